"""What a file is, by its name: the one list of video extensions (images: data/images.py)."""

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


def shown(name: str) -> str:
    """``name`` as text that any UTF-8 page or terminal takes: the bytes of a file name that are not
    UTF-8 (Latin-1 ``caf\\xe9.jpg``, which Python holds as surrogate escapes) written ``\\xe9``, as
    ``ls -b`` shows them, where encoding the name as it is would fail."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
