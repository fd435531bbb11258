"""Synthetic NYC yellow-taxi trips with the columns and dtypes of the TLC's Parquet files.

The workshop flows use the real trip records (https://www.nyc.gov/site/tlc/about/tlc-trip-record-data.page),
but a compute node often cannot download them and CI must not. This module makes look-alike data
of any size: the same 19 columns and dtypes as `yellow_tripdata_2022-*.parquet`, plausible
distributions, a few dirty rows to clean (zero distances, negative fares, missing passenger
counts, dropoffs before pickups) and a learnable tip: card payers tip about 18 % of the fare,
more at night and on weekends; cash tips are not recorded (0), as in the real data.

Each partition is generated independently from (seed, partition number), so the data are the same
however many workers make them. Workers cannot import this file from the notebook's folder: send
it to them first with `client.upload_file("taxi_data.py")`.

Command line (no cluster needed): `python taxi_data.py OUTPUT_DIR --rows 1000000 --partitions 10`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd

# Column -> dtype, in the order of the TLC files.
SCHEMA: dict[str, str] = {
    "VendorID": "int64",
    "tpep_pickup_datetime": "datetime64[us]",
    "tpep_dropoff_datetime": "datetime64[us]",
    "passenger_count": "float64",  # float in the TLC files: missing values are NaN
    "trip_distance": "float64",
    "RatecodeID": "float64",
    "store_and_fwd_flag": "string",
    "PULocationID": "int64",
    "DOLocationID": "int64",
    "payment_type": "int64",  # 1 card, 2 cash, 3 no charge, 4 dispute, 0 unknown
    "fare_amount": "float64",
    "extra": "float64",
    "mta_tax": "float64",
    "tip_amount": "float64",
    "tolls_amount": "float64",
    "improvement_surcharge": "float64",
    "total_amount": "float64",
    "congestion_surcharge": "float64",
    "airport_fee": "float64",
}

TAXI_ZONES = 263
AIRPORT_ZONES = (132, 138)  # JFK, LaGuardia
CARD, CASH = 1, 2
# Relative number of pickups in each hour of the day: quiet at 4 am, busiest at 6 pm.
HOURLY_DEMAND = np.array(
    [3, 2, 1.5, 1, 0.8, 1, 2, 3.5, 4.5, 4.5, 4.5, 4.8, 5, 5, 5.2, 5.5, 5.7, 6.2, 6.5, 6, 5.5, 5,
     4.5, 3.8]
)


def empty_frame() -> pd.DataFrame:
    """Zero rows with the right dtypes: the `meta` Dask needs to plan without generating data."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in SCHEMA.items()})


def generate_partition(
    rows: int, seed: int, partition: int, month: str = "2023-01"
) -> pd.DataFrame:
    """`rows` trips picked up during `month`, deterministic in (seed, partition)."""
    rng = np.random.default_rng([seed, partition])
    month_start = pd.Timestamp(month)
    days_in_month = month_start.days_in_month

    hour = rng.choice(24, size=rows, p=HOURLY_DEMAND / HOURLY_DEMAND.sum())
    seconds = (
        rng.integers(0, days_in_month, rows) * 86_400 + hour * 3_600 + rng.integers(0, 3_600, rows)
    )
    pickup = month_start + pd.to_timedelta(seconds, unit="s")
    weekend = pickup.day_of_week >= 5

    pickup_zone = _zones(rng, rows)
    dropoff_zone = _zones(rng, rows)
    to_or_from_airport = np.isin(pickup_zone, AIRPORT_ZONES) | np.isin(dropoff_zone, AIRPORT_ZONES)
    distance = np.where(
        to_or_from_airport, rng.normal(16, 3, rows).clip(8), rng.lognormal(0.6, 0.75, rows)
    ).round(2)
    rush_hour = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))
    speed_mph = np.where(rush_hour & ~weekend, 8.0, 13.0) * rng.lognormal(0, 0.25, rows)
    minutes = distance / speed_mph * 60 + rng.uniform(1, 4, rows)
    dropoff = pickup + pd.to_timedelta((minutes * 60).round(), unit="s")

    jfk_flat_rate = np.isin(pickup_zone, AIRPORT_ZONES[:1]) & (rng.random(rows) < 0.8)
    ratecode = np.where(jfk_flat_rate, 2.0, 1.0)
    fare = np.where(jfk_flat_rate, 70.0, 3.0 + 2.5 * distance + 0.5 * minutes).round(2)
    extra = np.where((hour >= 20) | (hour < 6), 1.0, np.where(rush_hour & ~weekend, 2.5, 0.0))
    tolls = np.where(to_or_from_airport & (rng.random(rows) < 0.3), 6.55, 0.0)
    airport_fee = np.where(np.isin(pickup_zone, AIRPORT_ZONES), 1.25, 0.0)
    congestion = np.where(rng.random(rows) < 0.9, 2.5, 0.0)

    payment = rng.choice([CARD, CASH, 3, 4], size=rows, p=[0.76, 0.22, 0.01, 0.01])
    night = (hour >= 22) | (hour < 4)
    tip_share = 0.16 + 0.04 * night + 0.02 * weekend + rng.normal(0, 0.04, rows)
    tip = np.where(payment == CARD, (fare * tip_share.clip(0)).round(2), 0.0)
    passengers = rng.choice([1.0, 2, 3, 4, 5, 6], size=rows, p=[0.72, 0.15, 0.05, 0.03, 0.03, 0.02])

    frame = pd.DataFrame(
        {
            "VendorID": rng.choice([1, 2], size=rows, p=[0.27, 0.73]),
            "tpep_pickup_datetime": pickup.astype("datetime64[us]"),
            "tpep_dropoff_datetime": dropoff.astype("datetime64[us]"),
            "passenger_count": passengers,
            "trip_distance": distance,
            "RatecodeID": ratecode,
            "store_and_fwd_flag": np.where(rng.random(rows) < 0.005, "Y", "N"),
            "PULocationID": pickup_zone,
            "DOLocationID": dropoff_zone,
            "payment_type": payment,
            "fare_amount": fare,
            "extra": extra,
            "mta_tax": 0.5,
            "tip_amount": tip,
            "tolls_amount": tolls,
            "improvement_surcharge": 1.0,
            "total_amount": 0.0,
            "congestion_surcharge": congestion,
            "airport_fee": airport_fee,
        }
    )
    _make_dirty(frame, rng)
    amounts = ["fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
               "improvement_surcharge", "congestion_surcharge", "airport_fee"]
    frame["total_amount"] = frame[amounts].sum(axis=1).round(2)
    return frame.astype(SCHEMA)


def _zones(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Taxi zones 1..263, a few of them (Midtown, the airports) far busier than the rest."""
    popularity = 1.0 / np.arange(1, TAXI_ZONES + 1) ** 0.9
    zone_order = np.random.default_rng(0).permutation(TAXI_ZONES) + 1  # same ranking everywhere
    return rng.choice(zone_order, size=rows, p=popularity / popularity.sum())


def _make_dirty(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """The errors a cleaning step meets in the real files, about 1 % of rows each."""
    rows = len(frame)
    unknown = rng.random(rows) < 0.02  # street-hail records without passenger data
    frame.loc[unknown, ["passenger_count", "RatecodeID"]] = np.nan
    frame.loc[unknown, "payment_type"] = 0
    frame.loc[rng.random(rows) < 0.01, "passenger_count"] = 0.0
    frame.loc[rng.random(rows) < 0.01, "trip_distance"] = 0.0
    refunds = rng.random(rows) < 0.005
    frame.loc[refunds, ["fare_amount", "extra", "mta_tax", "improvement_surcharge"]] *= -1
    swapped = rng.random(rows) < 0.002  # clock errors: dropoff before pickup
    frame.loc[swapped, ["tpep_pickup_datetime", "tpep_dropoff_datetime"]] = frame.loc[
        swapped, ["tpep_dropoff_datetime", "tpep_pickup_datetime"]
    ].to_numpy()


def trips(rows: int, partitions: int, seed: int = 0, month: str = "2023-01") -> dd.DataFrame:
    """A lazy Dask DataFrame of `rows` trips in `partitions` pieces, made where it is computed."""
    if rows < partitions or partitions < 1:
        raise ValueError(f"need 1 or more rows per partition: {rows} rows, {partitions} partitions")
    sizes = [rows // partitions + (i < rows % partitions) for i in range(partitions)]
    return dd.from_map(
        generate_partition,
        sizes,
        [seed] * partitions,
        list(range(partitions)),
        [month] * partitions,
        meta=empty_frame(),
        enforce_metadata=False,
    )


def write_parquet(path: str | Path, rows: int, partitions: int, seed: int = 0) -> list[Path]:
    """Write the trips as one Parquet file per partition under `path`; return the files."""
    trips(rows, partitions, seed).to_parquet(str(path), write_index=False, overwrite=True)
    return sorted(Path(path).glob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description="Write synthetic yellow-taxi trips as Parquet.")
    parser.add_argument("output", help="directory to (over)write")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    files = write_parquet(args.output, args.rows, args.partitions, args.seed)
    print(f"wrote {args.rows} trips in {len(files)} files under {args.output}")


if __name__ == "__main__":
    main()
