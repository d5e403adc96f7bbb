"""Files in and out: image folders with robust decoding, transforms, video frame streams."""
