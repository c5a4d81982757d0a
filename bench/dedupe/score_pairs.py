"""Precision, recall and F1 of a pairs file (`id1,id2,score`) against the
truth encoded in Febrl-style ids: `rec-N-org` and every `rec-N-dup-K` are one
entity, nothing else is.

    python3 score_pairs.py RECORDS.csv PAIRS.csv
"""
import csv
import itertools
import sys
from collections import defaultdict


def entity(rec_id):
    return rec_id.split("-")[1]


def main():
    records, pairs = sys.argv[1], sys.argv[2]
    groups = defaultdict(list)
    with open(records, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = next(reader)
        col = header.index("rec_id") if "rec_id" in header else 0
        for row in reader:
            groups[entity(row[col])].append(row[col])
    truth = set()
    for ids in groups.values():
        for a, b in itertools.combinations(sorted(ids), 2):
            truth.add((a, b))
    found = set()
    with open(pairs, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            found.add(tuple(sorted((row[0].strip(), row[1].strip()))))
    tp = len(found & truth)
    p = tp / len(found) if found else 0.0
    r = tp / len(truth) if truth else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(f"pairs {len(found)} true {len(truth)} tp {tp} precision {p:.4f} recall {r:.4f} f1 {f1:.4f}")


if __name__ == "__main__":
    main()
