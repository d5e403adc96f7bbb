"""Plain ``nn.Module`` networks (no I/O) and the architecture registry that builds them by name."""

from cyclegan_cli.models.registry import ARCHITECTURES, build, register  # noqa: F401

# importing the modules registers their architectures
from cyclegan_cli.models import cyclegan as _cyclegan  # noqa: F401,E402
from cyclegan_cli.models import dcgan as _dcgan  # noqa: F401,E402
from cyclegan_cli.models import cut as _cut  # noqa: F401,E402
from cyclegan_cli.models import student as _student  # noqa: F401,E402
