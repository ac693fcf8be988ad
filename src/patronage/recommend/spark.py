"""The similar-items build on Spark (`PATRONAGE_ANALYTICS_ENGINE=spark`, or
`patronage recommend build --engine spark`).

The same table as `algorithms.item_to_item.build_table`, expressed as Spark relational
operations so it scales past one machine's memory:

1. purchases: the distinct (customer, item) pairs (the binary matrix B);
2. co-buyers: purchases joined with themselves on the customer, X < Y, grouped by (X, Y)
   and counted, pairs with fewer than `min_co_buyers` dropped, then mirrored (Y, X): only
   co-bought pairs ever exist, as in Linden, Smith & York (2003);
3. scores from the buyers per item N_X (a group-by): cosine N_XY / sqrt(N_X · N_Y),
   conditional N_XY / (N_X · N_Y^alpha), or Smith & Linden's (N_XY - E_XY) / sqrt(E_XY) with
   E_XY = Σ_v H[X, v] · (1 - (1 - P_Y)^v), H[X, v] being the number of X's buyers who bought
   v other items (a group-by on (item, v)) — computed exactly here, where the NumPy build
   evaluates the same sum through a truncated SVD accurate to 1e-9;
4. top K per item: a window ranked by the score rounded to float32 (what the served table
   stores), ties to the lower item, as `top_k_per_row` does.

Only the item-to-item table runs on Spark; cross-sell, upsell, bought-together and trending
are small and stay in process. The recommend capability keeps its own session settings
(`spark_master`, `spark_shuffle_partitions`, no UI) so it does not depend on the analytics
capability's internals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from patronage.config import get_settings
from patronage.errors import AppError, ValidationFailed
from patronage.recommend.algorithms.item_to_item import SIMILARITIES
from patronage.recommend.interactions import binarize

ENGINES = ("duckdb", "database", "spark")  # duckdb and database: the in-process NumPy build


class SparkUnavailable(AppError):
    status_code = 503
    code = "engine_unavailable"


_session: Any = None


def session() -> Any:
    """This process's Spark session for recommendations (a JVM start costs seconds)."""
    global _session
    if _session is None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - pyspark is in the spark extra
            raise SparkUnavailable(
                "the Spark engine needs pyspark and Java 17: pip install 'patronage[spark]'"
            ) from exc
        settings = get_settings()
        _session = (
            SparkSession.builder.master(settings.spark_master)
            .appName("patronage-recommend")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")  # no progress bars over the CLI's
            .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        _session.sparkContext.setLogLevel("ERROR")
    return _session


def pair_frame(spark: Any, matrix: sp.csr_matrix) -> Any:
    """The (u, i) pairs of a users x items matrix as a Spark DataFrame (through Arrow)."""
    import pyarrow as pa

    m = sp.csr_matrix(matrix)
    users = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    table = pa.table({"u": users, "i": m.indices.astype(np.int64)})
    return spark.createDataFrame(table)


def similar_items(
    B: sp.csr_matrix,
    *,
    similarity: str = "conditional",
    k: int = 50,
    min_co_buyers: int = 2,
    alpha: float = 0.3,
    spark: Any = None,
) -> sp.csr_matrix:
    """The top-k similar-items table (items x items CSR, float32 scores) built on Spark."""
    rows = scored_pairs(
        B, similarity=similarity, k=k, min_co_buyers=min_co_buyers, alpha=alpha, spark=spark
    )
    n = B.shape[1]
    x, y, _, score = rows
    table = sp.csr_matrix((score.astype(np.float32), (x, y)), shape=(n, n), dtype=np.float32)
    table.sort_indices()
    return table


def scored_pairs(
    B: sp.csr_matrix,
    *,
    similarity: str,
    k: int,
    min_co_buyers: int = 2,
    alpha: float = 0.3,
    spark: Any = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(item, neighbour, rank, float64 score) of the top-k table, ordered by item and rank."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if similarity not in SIMILARITIES:
        raise ValidationFailed(f"unknown similarity {similarity!r}")
    spark = spark or session()
    binary = binarize(sp.csr_matrix(B))
    purchases = pair_frame(spark, binary).distinct().cache()
    buyers = purchases.groupBy("i").agg(F.count("*").cast("double").alias("n"))
    a, b = purchases.alias("a"), purchases.alias("b")
    upper = (
        a.join(b, (F.col("a.u") == F.col("b.u")) & (F.col("a.i") < F.col("b.i")))
        .groupBy(F.col("a.i").alias("x"), F.col("b.i").alias("y"))
        .agg(F.count("*").cast("double").alias("nxy"))
        .where(F.col("nxy") >= float(min_co_buyers))
    )
    pairs = upper.unionByName(upper.select(F.col("y").alias("x"), F.col("x").alias("y"), "nxy"))
    pairs = pairs.join(buyers.select(F.col("i").alias("x"), F.col("n").alias("nx")), "x").join(
        buyers.select(F.col("i").alias("y"), F.col("n").alias("ny")), "y"
    )
    if similarity == "cosine":
        scored = pairs.withColumn("score", F.col("nxy") / F.sqrt(F.col("nx") * F.col("ny")))
    elif similarity == "conditional":
        scored = pairs.withColumn(
            "score", F.col("nxy") / (F.col("nx") * F.pow(F.col("ny"), F.lit(float(alpha))))
        )
    else:
        scored = _relatedness(purchases, buyers, pairs, float(binary.nnz))
    ranked = (
        scored.where(F.col("score") > 0)
        .withColumn("score32", F.col("score").cast("float"))
        .withColumn(
            "rank",
            F.row_number().over(
                Window.partitionBy("x").orderBy(F.col("score32").desc(), F.col("y").asc())
            )
            - 1,
        )
        .where(F.col("rank") < k)
        .select("x", "y", "rank", "score")
    )
    out = ranked.toArrow() if hasattr(ranked, "toArrow") else None
    purchases.unpersist()
    if out is None:  # pragma: no cover - pyspark < 4
        frame = ranked.toPandas()
        cols = [frame[c].to_numpy() for c in ("x", "y", "rank", "score")]
    else:
        cols = [out.column(c).to_numpy() for c in ("x", "y", "rank", "score")]
    order = np.lexsort((cols[2], cols[0]))
    return (
        cols[0][order].astype(np.int64),
        cols[1][order].astype(np.int64),
        cols[2][order].astype(np.int64),
        cols[3][order].astype(np.float64),
    )


def _relatedness(purchases: Any, buyers: Any, pairs: Any, nnz: float) -> Any:
    """Smith & Linden (2017): observed versus expected co-buyers, E_XY summed exactly."""
    from pyspark.sql import functions as F

    others = purchases.groupBy("u").agg((F.count("*") - 1).alias("v")).where(F.col("v") >= 1)
    histogram = (
        purchases.join(others, "u")
        .groupBy(F.col("i").alias("x"), "v")
        .agg(F.count("*").cast("double").alias("h"))
    )
    # -log(1 - P_Y), P_Y = Y's share of all purchases (capped below 1, as in NumPy)
    share = F.least(F.col("ny") / F.lit(nnz), F.lit(1.0 - 1e-12))
    expected = (
        pairs.withColumn("scale", -F.log1p(-share))
        .join(histogram, "x")
        .groupBy("x", "y", "nxy")
        .agg(F.sum(F.col("h") * -F.expm1(-F.col("v") * F.col("scale"))).alias("exy"))
    )
    return expected.withColumn("score", (F.col("nxy") - F.col("exy")) / F.sqrt(F.col("exy")))


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValidationFailed(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    return engine
