"""romenas: ROME (robust, memory-efficient differentiable NAS) with GDAS and DARTS baselines.

Pipeline: data -> search space (supernet + genotype) -> sampler -> search algorithm ->
derive -> train from scratch -> evaluate / benchmark.
"""
from .config import SearchConfig, TrainConfig
from .errors import RomenasError
from .genotype import Genotype
from .inference import TrainedModel
from .published import load_genotype, parse_genotype
from .search.loop import SearchResult, search
from .train import TrainResult, describe, train

__version__ = "0.1.0"
__all__ = ["search", "SearchResult", "train", "TrainResult", "describe", "SearchConfig", "TrainConfig", "Genotype",
           "load_genotype", "parse_genotype", "TrainedModel", "RomenasError", "__version__"]
