"""Click-through-rate prediction as one domain package: your logs in, a trained model out.

A CTR practitioner's whole job is in this folder (the layout rule of ``docs/architecture.md``):

* `perceptrons.ctr.features`: `CTRFeatures` (the one CTR field spec: names, cardinalities,
  number of types; returned by the encoders and the generator, taken by a model config as is),
  `CTRBatch` (encoded tensors), `CTRInput` / `as_ctr_input` (model inputs) and the id
  convention (`PAD_ID`, `OOV_ID`, `MISSING_ID`).
* `perceptrons.ctr.io`: file formats. `schema` (`CTRSchema` of a Criteo TSV, a CSV/TSV/Parquet
  table or a CVR challenge file; `MalformedRowError` names file, line and column), `readers`
  (`iter_chunks` streams a file in bounded chunks, `read_file`), `parquet`, `inference`
  (`infer_schema` classifies undeclared table columns and says why) and `encoding`
  (`CTREncoder`: vocabulary + OOV or stable hashing per field, numeric standardisation or
  quantile buckets, fitted over a stream and saved as JSON; `fit_encoder`, `iter_encoded`,
  `encode_file`).
* `perceptrons.ctr.synthetic`: `SyntheticCTRTask`, planted cross-field and type-specific
  interactions with oracle click probabilities (our own test bed for EMOFM, Li & Wu 2023,
  arXiv:2310.04482).
* `perceptrons.ctr.layers`: `FieldEmbedding` (one embedding for every model) and the
  interaction blocks (`fm_interaction`, `CrossNetV2`, `FieldAttention`, `MixerBlock`).
* `perceptrons.ctr.models`: the registered models ``lr``, ``fm``, ``dnn``, ``deepfm``,
  ``dcnv2``, ``autoint`` and ``emofm`` (a reconstruction) and `CTRStep`, the `fit` step.
* `perceptrons.ctr.metrics`: AUC, log loss, PCOC, per-type AUC.
* `perceptrons.ctr.pipeline`: the end-to-end pipeline. `CTRTrainConfig` (data, encoder,
  model, training loop), `train` (read -> infer schema -> fit encoder -> encode -> train ->
  validate -> save a model folder), `evaluate`, `predict`, `load`, `save`, and
  `fit_ctr_model`, the one CTR training protocol (`fit` + `CTRStep`, validation AUC, early
  stopping, best weights restored) on encoded tensors.

The command line (``perceptrons ctr train|evaluate|predict``), the ``emofm-ctr`` study and
``benchmarks/ctr_protocol.py`` call the pipeline.
"""

from perceptrons.ctr.features import (
    MISSING_ID,
    NUM_SPECIAL_IDS,
    OOV_ID,
    PAD_ID,
    CTRBatch,
    CTRFeatures,
    CTRInput,
    as_ctr_input,
)
from perceptrons.ctr.io.encoding import (
    CTREncoder,
    EncoderConfig,
    encode_file,
    fit_encoder,
    hash_id,
    iter_encoded,
)
from perceptrons.ctr.io.inference import (
    ColumnReport,
    SchemaInference,
    infer_schema,
    print_schema_inference,
)
from perceptrons.ctr.io.readers import iter_chunks, read_file
from perceptrons.ctr.io.schema import (
    CRITEO_CATEGORICAL,
    CRITEO_NUMERIC,
    CVR_FIELD_GROUPS,
    CVR_MULTI_VALUED,
    CTRDataError,
    CTRSchema,
    MalformedRowError,
    RawChunk,
    ReadStats,
    criteo_schema,
    cvr_schema,
)
from perceptrons.ctr.metrics import auc, ctr_metrics, logloss, pcoc, per_type_auc
from perceptrons.ctr.pipeline import (
    CTRFitResult,
    CTRTrainConfig,
    ModelDirError,
    TrainedCTR,
    evaluate,
    fit_ctr_model,
    load,
    model_logits,
    predict,
    save,
    train,
)
from perceptrons.ctr.synthetic import (
    SyntheticCTRConfig,
    SyntheticCTRData,
    SyntheticCTRTask,
    synthetic_ctr,
)

__all__ = [
    "CRITEO_CATEGORICAL",
    "CRITEO_NUMERIC",
    "CVR_FIELD_GROUPS",
    "CVR_MULTI_VALUED",
    "MISSING_ID",
    "NUM_SPECIAL_IDS",
    "OOV_ID",
    "PAD_ID",
    "CTRBatch",
    "CTRDataError",
    "CTREncoder",
    "CTRFeatures",
    "CTRFitResult",
    "CTRInput",
    "CTRSchema",
    "CTRTrainConfig",
    "ColumnReport",
    "EncoderConfig",
    "MalformedRowError",
    "ModelDirError",
    "RawChunk",
    "ReadStats",
    "SchemaInference",
    "SyntheticCTRConfig",
    "SyntheticCTRData",
    "SyntheticCTRTask",
    "TrainedCTR",
    "as_ctr_input",
    "auc",
    "criteo_schema",
    "ctr_metrics",
    "cvr_schema",
    "encode_file",
    "evaluate",
    "fit_ctr_model",
    "fit_encoder",
    "hash_id",
    "infer_schema",
    "iter_chunks",
    "iter_encoded",
    "load",
    "logloss",
    "model_logits",
    "pcoc",
    "per_type_auc",
    "predict",
    "print_schema_inference",
    "read_file",
    "save",
    "synthetic_ctr",
    "train",
]
