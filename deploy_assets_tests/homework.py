"""The 2022 MLOps Zoomcamp deployment homework, as its notebook and `starter.py` do it: the reference the fhv
deployment is compared against (tests, `bench/bench_homework.py`).

Week 1's model: `DictVectorizer + LinearRegression` on the FHV zones as strings (`fillna(-1)`, then int, then
str), durations `dropOff_datetime - pickup_datetime` kept between 1 and 60 minutes. Week 4's script scores a month
with it and names each ride `YYYY/MM_<row index>`.
"""

from __future__ import annotations

import pandas as pd
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression

CATEGORICAL = ["PUlocationID", "DOlocationID"]


def read_data(filename: str) -> pd.DataFrame:
    df = pd.read_parquet(filename)
    df["duration"] = df.dropOff_datetime - df.pickup_datetime
    df["duration"] = df.duration.dt.total_seconds() / 60
    df = df[(df.duration >= 1) & (df.duration <= 60)].copy()
    df[CATEGORICAL] = df[CATEGORICAL].fillna(-1).astype("int").astype("str")
    return df


def train(filename: str) -> tuple[DictVectorizer, LinearRegression]:
    """The notebook's week-1 model on one month."""
    df = read_data(filename)
    dv = DictVectorizer()
    X_train = dv.fit_transform(df[CATEGORICAL].to_dict(orient="records"))
    lr = LinearRegression()
    lr.fit(X_train, df.duration.values)
    return dv, lr


def score(filename: str, year: int, month: int, dv: DictVectorizer, lr: LinearRegression) -> pd.DataFrame:
    """starter.py: every kept ride of the month with its id and predicted duration."""
    df = read_data(filename)
    X_val = dv.transform(df[CATEGORICAL].to_dict(orient="records"))
    y_pred = lr.predict(X_val)
    df["ride_id"] = f"{year:04d}/{month:02d}_" + df.index.astype("str")
    return pd.DataFrame({"ride_id": df["ride_id"], "predicted_duration": y_pred})
