#!/usr/bin/env python3
"""Known duplicates for the whole-database scan benchmark.

Reads N customers at random (seeded) from a kehu SQLite database, with
their primary contact, and writes for each a second record of the same
company as another system would hold it: new code, no USCC (a USCC would
make the import update the original), and a name changed in one of six
ways — region moved into brackets, another legal form, a one-character
typo, the bare brand without place and legal form, a new name (a
renamed company) that keeps the contact's phone and the address, or an
abbreviation (美华超市 → 美超: the first character and one of each later
word). The other variants keep the contact's phone in 60 % of cases, the
e-mail in 30 %, the address in 50 %. Mobiles and e-mails sealed at rest
(`enc1:…`) cannot be read here and are left out: only landlines carry a
phone over.

    plant_duplicates.py DATABASE.sqlite N VARIANTS.csv TRUTH.csv [SEED]

TRUTH.csv: `original_code,variant_code` per line, for `kehu duplicates scan --truth`.
"""
import csv
import random
import sqlite3
import sys

SUFFIXES = ["股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团", "厂"]
TYPO_CHARS = "华新达信宏泰盛源恒利通安和美佳康明光远嘉鑫丰益隆兴旺福瑞"
HEADER = ["客户编号", "客户名称", "所属行业", "省份", "城市", "地址", "合作起始时间", "联系人", "手机", "座机", "邮箱"]


def split_name(name, city):
    """(place, brand + business words, legal form) of a demo company name."""
    place, rest = "", name
    if city and name.startswith(city):
        place, rest = city, name[len(city):]
        if rest.startswith("市"):
            rest = rest[1:]
    suffix = next((s for s in SUFFIXES if rest.endswith(s)), "")
    core = rest[: len(rest) - len(suffix)] if suffix else rest
    return place, core, suffix


def main():
    db, n, variants_path, truth_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 7)
    con = sqlite3.connect(db)
    (max_id,) = con.execute("SELECT MAX(id) FROM customers").fetchone()
    ids = rng.sample(range(1, max_id + 1), n * 2)
    rows = []
    for cid in ids:
        r = con.execute(
            "SELECT c.code, c.name, c.industry, c.province, c.city, c.address, c.cooperation_start_on, "
            "ct.name, ct.mobile, ct.landline, ct.email FROM customers c "
            "LEFT JOIN contacts ct ON ct.id = (SELECT id FROM contacts WHERE customer_id = c.id ORDER BY is_primary DESC, id LIMIT 1) "
            "WHERE c.id = ?",
            (cid,),
        ).fetchone()
        if r:
            rows.append(r)
        if len(rows) == n:
            break
    with open(variants_path, "w", encoding="utf-8", newline="") as vf, open(
        truth_path, "w", encoding="utf-8", newline=""
    ) as tf:
        out = csv.writer(vf)
        out.writerow(HEADER)
        truth = csv.writer(tf)
        truth.writerow(["original", "variant"])
        for i, r in enumerate(rows):
            code, name, industry, province, city, address, start, contact, mobile, landline, email = r
            place, core, suffix = split_name(name, city or "")
            # Sealed at rest: unreadable without the key, so not carried over.
            mobile, email = [None if (v or "").startswith("enc1:") else v for v in (mobile, email)]
            kind = i % 6
            if kind == 0:  # 无锡美华超市有限公司 → 美华超市(无锡)有限公司
                new = f"{core}({place}){suffix or '有限公司'}" if place else f"{core}(总部){suffix}"
            elif kind == 1:  # another legal form
                new = f"{place}{core}{rng.choice([s for s in ('股份有限公司', '有限责任公司', '有限公司') if s != suffix])}"
            elif kind == 2:  # one character mistyped
                j = rng.randrange(len(core))
                new = f"{place}{core[:j]}{rng.choice([c for c in TYPO_CHARS if c != core[j]])}{core[j + 1:]}{suffix}"
            elif kind == 3:  # the bare brand
                new = core
            elif kind == 4:  # renamed: a new name, the same phone and address
                new = f"{place}{''.join(rng.sample(TYPO_CHARS, 2))}新材料{suffix or '有限公司'}"
            else:  # an abbreviation: 美华超市 → 美超, 宏达信息技术 → 宏信技
                new = core[0] + core[2::2][:3] + (suffix or "有限公司")
            keep_phone = kind == 4 or rng.random() < 0.6
            keep_email = kind != 4 and rng.random() < 0.3
            keep_address = kind == 4 or rng.random() < 0.5
            variant = f"D{9000000 + i}"
            out.writerow([
                variant, new, industry or "", province or "", city or "",
                (address or "") if keep_address else "", start or "",
                contact or "", (mobile or "") if keep_phone else "", (landline or "") if keep_phone else "",
                (email or "") if keep_email else "",
            ])
            truth.writerow([code, variant])


if __name__ == "__main__":
    main()
