"""ragtune: fine-tune an embedding model on your own documents, without labelled data.

>>> from ragtune import Config, Pipeline  # doctest: +SKIP
>>> Pipeline(Config(docs=Path("resources"), out=Path("runs/demo"))).run().metrics["fine_tuned"]  # doctest: +SKIP
"""

__version__ = "0.3.0"

from .config import Config  # noqa: E402
from .errors import RagtuneError  # noqa: E402
from .pipeline import Pipeline, RunResult  # noqa: E402
from .search import Retriever  # noqa: E402

__all__ = ["Config", "Pipeline", "RagtuneError", "Retriever", "RunResult", "__version__"]
