"""Click-through-rate data: streaming readers, fitted feature encoders, a synthetic generator.

* `perceptrons.data.ctr.schema`: `CTRSchema` (the columns of a Criteo TSV, CSV/TSV/Parquet
  table or CVR challenge file; `criteo_schema`, `cvr_schema`), `RawChunk` (parsed rows),
  `ReadStats`, and `MalformedRowError` (names file, line and column).
* `perceptrons.data.ctr.readers`: `iter_chunks` streams a file in chunks of bounded size;
  `read_file` reads a small one whole.
* `perceptrons.data.ctr.inference`: `infer_schema` classifies undeclared table columns and
  reports why (`print_schema_inference`).
* `perceptrons.data.ctr.encoding`: `CTREncoder` (vocabulary + OOV or hashing per field, numeric
  standardisation or quantile buckets), fitted over a stream and saved as JSON; `fit_encoder`,
  `iter_encoded`, `encode_file`.
* `perceptrons.data.ctr.batch`: `CTRBatch` (the encoded tensors) and the id convention
  (`PAD_ID`, `OOV_ID`, `MISSING_ID`). The fields of encoded data (``feature_spec`` of an
  encoder or of synthetic data) are a `perceptrons.layers.ctr.CTRFeatures`, the one CTR field
  spec, passed to a model as is (``features=encoder.feature_spec``).
* `perceptrons.data.ctr.synthetic`: `SyntheticCTRTask`, planted cross-field and type-specific
  interactions with oracle click probabilities (our own test bed for EMOFM, arXiv 2310.04482).
"""

from perceptrons.data.ctr.batch import (
    MISSING_ID,
    NUM_SPECIAL_IDS,
    OOV_ID,
    PAD_ID,
    CTRBatch,
)
from perceptrons.data.ctr.encoding import (
    CTREncoder,
    EncoderConfig,
    encode_file,
    fit_encoder,
    hash_id,
    iter_encoded,
)
from perceptrons.data.ctr.inference import (
    ColumnReport,
    SchemaInference,
    infer_schema,
    print_schema_inference,
)
from perceptrons.data.ctr.readers import iter_chunks, read_file
from perceptrons.data.ctr.schema import (
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
from perceptrons.data.ctr.synthetic import (
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
    "CTRSchema",
    "ColumnReport",
    "EncoderConfig",
    "MalformedRowError",
    "RawChunk",
    "ReadStats",
    "SchemaInference",
    "SyntheticCTRConfig",
    "SyntheticCTRData",
    "SyntheticCTRTask",
    "criteo_schema",
    "cvr_schema",
    "encode_file",
    "fit_encoder",
    "hash_id",
    "infer_schema",
    "iter_chunks",
    "iter_encoded",
    "print_schema_inference",
    "read_file",
    "synthetic_ctr",
]
