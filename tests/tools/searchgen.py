#!/usr/bin/env python3
"""searchgen.py - test data and expected answers for .search (0018-search.sh).

  searchgen.py gen DIR [--seed S] [--articles N] [--batches B]
                       [--records R] [--files F] [--prefix P]
      Write a deterministic tree under DIR: articles/YYYY/MM/PNNNNN.json,
      articles/batches/P-batch-NN.jsonl, files/ (text, HTML, binary,
      empty) and a few special files (ranking, collisions, malformed).

  searchgen.py check MNT ROOT [--subset] [--only NAME,...] [--label L]
      For every query of QUERIES: the expected set, computed here from the
      files under ROOT (the source tree, or the mount itself), against what
      MNT/.search/QUERY/ lists (readdir order, mapped to real paths with
      the xattrs user.stashfs.path and user.stashfs.line) and what its
      .results.json holds. --subset only asks that every result be
      expected (after a crash, before the index has caught up).

The model of matching is what a user expects, written from the README, not
from the product's code: whole words, case- and diacritic-insensitive (Latin
letters), ё = е, ß = ss, Persian and Arabic letter variants alike, ZWNJ a
word break; a Chinese word matches wherever its characters stand in a row.
A word matches any field of a document (title, content, author, tags, url,
lang, other metadata keys and values, and the file name).
"""
import datetime
import fnmatch
import html
import json
import os
import random
import re
import sys
import unicodedata

# ---------------------------------------------------------------- data

WORDS = {
    # word: weight (how often it is drawn)
    "storage": 3, "engine": 3, "database": 3, "river": 3, "mountain": 3,
    "quick": 2, "brown": 2, "fox": 2, "lazy": 2, "dog": 3, "market": 3,
    "energy": 3, "climate": 3, "garden": 2, "music": 3, "history": 3,
    "science": 2, "ocean": 3, "forest": 2, "winter": 2, "summer": 2,
    "village": 1, "harbor": 1, "lantern": 1, "meadow": 1, "glacier": 1,
    "stormy": 1, "storehouse": 1,
    # German, French (diacritics), Russian, Persian, Chinese
    "Straße": 2, "Müller": 1, "Brücke": 1, "über": 2, "Käse": 1,
    "café": 2, "élève": 1, "naïve": 1, "forêt": 1, "château": 1,
    "новости": 2, "погода": 2, "ёлка": 1, "зима": 2, "город": 2,
    "کتاب": 2, "دانشگاه": 1, "ایران": 2, "فرهنگ": 1, "کتاب‌ها": 1,
    "北京": 2, "大学": 2, "中国": 2, "天气": 1, "经济": 1,
}
# the words searched on their own (every language, rare and common)
QUERY_WORDS = ["storage", "climate", "river", "fox", "village", "lantern",
               "glacier", "stormy", "storehouse", "Straße", "Müller",
               "Brücke", "café", "naïve", "château", "новости", "ёлка",
               "город", "کتاب", "دانشگاه", "کتاب‌ها", "北京", "中国", "经济"]
FILLER = ["lorem", "ipsum", "dolor", "sit", "amet", "tempor", "magna",
          "aliqua", "veniam", "nostrud"]
PHRASES = ["quick brown fox", "climate energy market", "北京大学",
           "новости погода", "café über Straße", "storage engine"]
AUTHORS = ["Ada Smith", "Bob Jones", "Chen Wei", "Darya Ivanova",
           "Reza Tehrani", "Jürgen Müller", "Élodie Martin", "Jane Doe"]
TAGS = ["databases", "climate", "sport", "politik", "science", "culture",
        "tech", "économie", "наука", "فرهنگ"]
LANGS = ["en", "en", "en-GB", "de", "fr", "ru", "fa", "zh-CN"]
HOSTS = ["https://news.example.com/%Y/%m/item-%n",
         "https://blog.sample.org/p/%n", "http://www.archive.net/item?id=%n"]

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
FILE_MTIME = 1262304000  # 2010-01-01: files/ without a date of their own


def pick(rng, n):
    words = list(WORDS)
    weights = [WORDS[w] for w in words]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.03:
            out.append(rng.choice(PHRASES))
        elif r < 0.6:
            out.append(rng.choice(FILLER))
        else:
            out.append(rng.choices(words, weights)[0])
    return out


def sentence(rng, n):
    """n words; Chinese words next to each other run together, as
    Chinese is written."""
    out = ""
    for w in pick(rng, n):
        if out and not (is_cjk(out[-1]) and is_cjk(w[0])):
            out += " "
        out += w
    return out


def date_string(rng, d):
    """published_at in one of the forms a crawler writes."""
    form = rng.randrange(4)
    if form == 0:
        return d.strftime("%Y-%m-%d")
    t = d.replace(hour=rng.randrange(24), minute=rng.randrange(60),
                  second=rng.randrange(60))
    if form == 1:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 2:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    return t.strftime("%Y-%m-%dT%H:%M:%S") + "-05:00"


def article(rng, n, prefix):
    d = datetime.date(2019, 1, 1) + datetime.timedelta(
        days=rng.randrange(6 * 365))
    d = datetime.datetime(d.year, d.month, d.day)
    a = {"title": sentence(rng, rng.randint(2, 5)).title()
         if rng.random() < 0.3 else sentence(rng, rng.randint(2, 5)),
         "content": sentence(rng, rng.randint(8, 30)),
         "url": HOSTS[n % 3].replace("%Y", d.strftime("%Y"))
         .replace("%m", d.strftime("%m")).replace("%n", "%s%d" % (prefix, n)),
         "lang": rng.choice(LANGS),
         "published_at": date_string(rng, d)}
    if rng.random() < 0.2:
        a["author"] = rng.sample(AUTHORS, 2)
    else:
        a["author"] = rng.choice(AUTHORS)
    a["tags"] = rng.sample(TAGS, rng.randint(1, 3))
    if rng.random() < 0.1:
        a["source"] = {"name": rng.choice(["Reuters", "Tagesschau"])}
    return a, d


def write(path, data, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def gen(root, seed, n_articles, n_batches, n_records, n_files, prefix):
    rng = random.Random(seed)
    for i in range(n_articles):
        a, d = article(rng, i, prefix)
        path = os.path.join(root, "articles", d.strftime("%Y/%m"),
                            "%s%05d.json" % (prefix, i))
        write(path, json.dumps(a, ensure_ascii=rng.random() < 0.3,
                               indent=rng.choice([None, 1])))
    for b in range(n_batches):
        lines = []
        for r in range(n_records):
            a, _ = article(rng, 100000 + b * n_records + r, prefix)
            lines.append(json.dumps(a, ensure_ascii=False))
        if b == 0:
            # a blank line (numbering counts it) and a malformed record
            lines.insert(3, "")
            lines.insert(6, '{"title": "brokenrecord", }')
        write(os.path.join(root, "articles", "batches",
                           "%s-batch-%02d.jsonl" % (prefix, b)),
              "\n".join(lines) + "\n")
    for i in range(n_files):
        kind = i % 10
        base = os.path.join(root, "files", "f%02d" % (i % 7))
        if kind < 6:
            write(os.path.join(base, "%snote-%04d.txt" % (prefix, i)),
                  sentence(rng, rng.randint(5, 40)) + "\n", FILE_MTIME)
        elif kind < 8:
            write(os.path.join(base, "%sblob-%04d.bin" % (prefix, i)),
                  bytes([0, 1, 2, 255]) + rng.randbytes(rng.randint(10, 3000)),
                  FILE_MTIME)
        elif kind == 8:
            write(os.path.join(base, "%spage-%04d.html" % (prefix, i)),
                  "<html><head><style>p { color: red }</style></head><body>"
                  "<h1>%s</h1><p>%s &amp; scriptless</p><script>var "
                  "hiddenscriptword = 1;</script></body></html>\n"
                  % (sentence(rng, 3), sentence(rng, 10)), FILE_MTIME)
        else:
            write(os.path.join(base, "%sempty-%04d.txt" % (prefix, i)), "",
                  FILE_MTIME)
    if prefix != "a":
        return
    # Ranking: "zephyrine" in the titles of three articles, and only in
    # the body of three others of about the same size.
    for i in range(6):
        title = "zephyrine %s" % sentence(rng, 3) if i < 3 else \
            sentence(rng, 4)
        body = sentence(rng, 30)
        if i >= 3:
            body += " zephyrine"
        write(os.path.join(root, "articles", "rank", "rank-%d.json" % i),
              json.dumps({"title": title, "content": body,
                          "published_at": "2022-02-02"}))
    # Two files named report.txt, one word: the listing tells them apart.
    for d in ("x", "y"):
        write(os.path.join(root, "files", d, "report.txt"),
              "collisionword in folder %s\n" % d, FILE_MTIME)
    # Malformed JSON: stored as written, searchable as text.
    write(os.path.join(root, "articles", "broken", "bad-1.json"),
          '{"title": "brokenword article", "content": "unfinished"',
          FILE_MTIME)
    # Time zones: 01:00 at +02:00 on March 1st is still February in UTC.
    write(os.path.join(root, "articles", "tz", "tz-1.json"),
          json.dumps({"title": "timezoneword", "published_at":
                      "2023-03-01T01:00:00+02:00"}))
    write(os.path.join(root, "articles", "tz", "tz-2.json"),
          json.dumps({"title": "timezoneword", "published_at":
                      "2023-03-01T00:00:00Z"}))


# ---------------------------------------------------------------- model

FOLD = {"ё": "е", "Ё": "Е", "ß": "ss", "ẞ": "ss", "ی": "ي", "ى": "ي",
        "ک": "ك", "ة": "ه", "ۀ": "ه", "آ": "ا", "أ": "ا", "إ": "ا",
        "ٱ": "ا", "\u200c": " "}


def is_cjk(c):
    o = ord(c)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or
            0x3040 <= o <= 0x30FF or 0xAC00 <= o <= 0xD7AF)


def norm(s):
    """What a user takes for the same text: folded, lower case, Latin
    letters without their diacritics."""
    out = []
    for c in s:
        c = FOLD.get(c, c)
        for ch in c:
            if ord(ch) < 0x250 and ord(ch) >= 0xC0:
                ch = "".join(x for x in unicodedata.normalize("NFKD", ch)
                             if not unicodedata.combining(x))
            out.append(ch.lower())
    return "".join(out)


def tokens(s):
    """Whole words: runs of letters and digits."""
    toks, cur = [], []
    for c in norm(s):
        if unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Co":
            cur.append(c)
        elif cur:
            toks.append("".join(cur))
            cur = []
    if cur:
        toks.append("".join(cur))
    return toks


COLS = ("title", "content", "author", "tags", "url", "lang", "meta", "name")


class Doc:
    def __init__(self, path, line, name, area, fields, date):
        self.path, self.line, self.name, self.area = path, line, name, area
        self.key = "%s:%d" % (path, line) if line else path
        self.text = {c: norm(fields.get(c) or "") for c in COLS}
        self.toks = {c: tokens(fields.get(c) or "") for c in COLS}
        self.all = set(t for c in COLS for t in self.toks[c])
        self.date = date  # ns, or None when it is the file's mtime

    def has(self, word, cols=COLS):
        """word (or the words of word, in a row) in one of cols."""
        if all(is_cjk(c) for c in word):
            w = norm(word)
            return any(w in self.text[c] for c in cols)
        ws = tokens(word)
        if len(ws) == 1 and cols is COLS:
            return ws[0] in self.all
        for c in cols:
            t = self.toks[c]
            for i in range(len(t) - len(ws) + 1):
                if t[i:i + len(ws)] == ws:
                    return True
        return False

    def prefix(self, p, cols=COLS):
        p = norm(p)
        return any(t.startswith(p) for c in cols for t in self.toks[c])

    def near(self, a, b, n):
        """True when a and b stand at most n words apart in one field.
        None (either will do) when they do so only as a user counts words:
        the index holds a run of k Chinese characters as k tokens (its
        bigrams and the last character alone), so NEAR() counts them."""
        a, b = norm(a), norm(b)
        user = index = False
        for c in COLS:
            pos, at = [], 0
            for t in self.toks[c]:
                pos.append(at)
                at += len(t) if len(t) > 1 and all(map(is_cjk, t)) else 1
            pa = [i for i, t in enumerate(self.toks[c]) if t == a]
            pb = [i for i, t in enumerate(self.toks[c]) if t == b]
            for i in pa:
                for j in pb:
                    lo, hi = min(i, j), max(i, j)
                    user |= hi - lo - 1 <= n
                    index |= pos[hi] - pos[lo] - 1 <= n
        return True if index else None if user else False


def parse_date(s):
    try:
        d = datetime.datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return (d - EPOCH) // datetime.timedelta(microseconds=1) * 1000


def flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flatten(prefix + "." + k if prefix else k, x, out)
    elif isinstance(v, list):
        for x in v:
            flatten(prefix, x, out)
    elif v is not None:
        out.append("%s: %s" % (prefix, v))


def article_fields(a):
    if not isinstance(a, dict):
        return None
    f, meta = {}, []
    for k in ("title", "url", "lang"):
        if isinstance(a.get(k), str):
            f[k] = a[k]
    for k in ("content", "text", "body"):
        if isinstance(a.get(k), str) and a[k].strip():
            f["content"] = a[k]
            break
    au = a.get("author")
    au = au if isinstance(au, list) else [au] if au is not None else []
    f["author"] = ", ".join(x if isinstance(x, str) else x.get("name", "")
                            for x in au)
    tg = a.get("tags")
    tg = tg if isinstance(tg, list) else [tg] if tg is not None else []
    f["tags"] = ", ".join(str(x) for x in tg)
    for k, v in a.items():
        if k not in ("title", "url", "lang", "content", "text", "body",
                     "html", "author", "tags", "published_at"):
            flatten(k, v, meta)
    f["meta"] = "\n".join(meta)
    date = parse_date(a["published_at"]) \
        if isinstance(a.get("published_at"), str) else None
    return f, date


def html_text(s):
    s = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", s)
    s = re.sub(r"(?s)<[^>]*>", " ", s)
    return html.unescape(s)


def load_docs(root):
    """Every document of the tree under root, by key."""
    docs = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".search", ".backups")]
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            rel = "/" + os.path.relpath(full, root)
            area = rel.split("/")[1] if rel.count("/") > 1 else ""
            with open(full, "rb") as f:
                data = f.read()
            lower = fn.lower()
            made = []
            try:
                text = data.decode("utf-8") if data else None
            except UnicodeDecodeError:
                text = None
            if text is not None and "\0" in text:
                text = None
            if area == "articles" and text is not None and \
                    lower.endswith((".jsonl", ".ndjson")):
                for i, line in enumerate(text.split("\n"), 1):
                    if not line.strip():
                        continue
                    try:
                        r = article_fields(json.loads(line))
                    except ValueError:
                        r = None
                    if r:
                        made.append((i, r[0], r[1]))
            elif area == "articles" and text is not None and \
                    lower.endswith(".json"):
                try:
                    r = article_fields(json.loads(text))
                except ValueError:
                    r = None
                if r:
                    made.append((0, r[0], r[1]))
            if not made:
                f = {}
                if text is not None:
                    f["content"] = html_text(text) if lower.endswith(
                        (".html", ".htm")) else text
                made.append((0, f, None))
            for line, f, date in made:
                f["name"] = fn
                d = Doc(rel, line, fn, area, f, date)
                docs[d.key] = d
    return docs


# ---------------------------------------------------------------- queries

def ns(s):
    return parse_date(s)


def rng_q(d, lo, hi):
    """A date range filter: True, False, or None (either will do) for a
    document dated by its file's mtime: whether the index saw the mtime
    cp -a sets after writing depends on timing (see the test)."""
    if d.date is None:
        return None
    return (lo is None or d.date >= ns(lo)) and (hi is None or d.date < ns(hi))


def Q(name, query, pred, limit=1000):
    return (name, query, pred, limit)


def queries():
    qs = []
    # every word of the vocabulary on its own, as it is written
    # (limit: lifts the default cap of 1000 for the commonest)
    for i, w in enumerate(QUERY_WORDS):
        qs.append(Q("w%02d" % i, w + " limit:5000", lambda d, w=w: d.has(w),
                    5000))
    qs += [
        # the same words, typed differently
        Q("case", "STORAGE", lambda d: d.has("storage")),
        Q("strasse", "strasse", lambda d: d.has("straße")),
        Q("muller", "muller", lambda d: d.has("müller")),
        Q("cafe", "CAFE", lambda d: d.has("café")),
        Q("eleve", "eleve", lambda d: d.has("élève")),
        Q("elka", "елка", lambda d: d.has("ёлка")),
        Q("arabic-kaf", "كتاب", lambda d: d.has("کتاب")),
        Q("zh-1", "京", lambda d: d.has("京")),
        Q("zh-4", "北京大学", lambda d: d.has("北京大学")),
        Q("zh-cross", "学中", lambda d: d.has("学中")),
        # phrases
        Q("ph1", '"quick brown fox"', lambda d: d.has("quick brown fox")),
        Q("ph2", '"brown quick"', lambda d: d.has("brown quick")),
        Q("ph3", '"новости погода"', lambda d: d.has("новости погода")),
        Q("ph4", '"cafe uber strasse"', lambda d: d.has("café über straße")),
        Q("ph5", '"storage engine" river',
          lambda d: d.has("storage engine") and d.has("river")),
        # boolean
        Q("and", "river AND ocean", lambda d: d.has("river") and
          d.has("ocean")),
        Q("implicit", "river ocean", lambda d: d.has("river") and
          d.has("ocean")),
        Q("or", "glacier OR lantern", lambda d: d.has("glacier") or
          d.has("lantern")),
        Q("not", "climate NOT energy", lambda d: d.has("climate") and
          not d.has("energy")),
        Q("group", "(glacier OR meadow) NOT harbor",
          lambda d: (d.has("glacier") or d.has("meadow")) and
          not d.has("harbor")),
        Q("mixed", "зима AND (کتاب OR ایران)",
          lambda d: d.has("зима") and (d.has("کتاب") or d.has("ایران"))),
        Q("lower-ops", "river and ocean",
          lambda d: d.has("river") and d.has("and") and d.has("ocean")),
        Q("near", "NEAR(river ocean, 2)", lambda d: d.near("river", "ocean", 2)),
        # prefixes
        Q("prefix", "stor* limit:5000", lambda d: d.prefix("stor"), 5000),
        Q("prefix2", "glac* OR lant*", lambda d: d.prefix("glac") or
          d.prefix("lant")),
        Q("prefix-ru", "новост*", lambda d: d.prefix("новост")),
        # fields
        Q("author", "author:smith", lambda d: d.has("smith", ["author"])),
        Q("author-ph", 'author:"jane doe"',
          lambda d: d.has("jane doe", ["author"])),
        Q("author-dia", "author:muller", lambda d: d.has("muller", ["author"])),
        Q("author-or", "author:(ivanova OR tehrani)",
          lambda d: d.has("ivanova", ["author"]) or
          d.has("tehrani", ["author"])),
        Q("author-not", "jones NOT author:jones",
          lambda d: d.has("jones") and not d.has("jones", ["author"])),
        Q("tag", "tag:science", lambda d: d.has("science", ["tags"])),
        Q("tags", "Tags:economie", lambda d: d.has("économie", ["tags"])),
        Q("tag-ru", "tag:наука river",
          lambda d: d.has("наука", ["tags"]) and d.has("river")),
        Q("url", "url:sample.org", lambda d: d.has("sample org", ["url"])),
        Q("url-slash", "url:news.example.com/2021/03",
          lambda d: d.has("news example com 2021 03", ["url"])),
        Q("url-full", "url:https://blog.sample.org",
          lambda d: d.has("https blog sample org", ["url"])),
        Q("lang", "lang:fa", lambda d: d.has("fa", ["lang"])),
        Q("lang-zh", "lang:zh", lambda d: d.has("zh", ["lang"])),
        Q("lang-gb", "lang:en-GB", lambda d: d.has("en gb", ["lang"])),
        Q("title", "title:zephyrine", lambda d: d.has("zephyrine", ["title"])),
        Q("content", "content:zephyrine",
          lambda d: d.has("zephyrine", ["content"])),
        # filters
        Q("area", "area:files storage",
          lambda d: d.area == "files" and d.has("storage")),
        Q("area2", "area:files area:programs river",
          lambda d: d.area in ("files", "programs") and d.has("river")),
        Q("name", "name:*.html", lambda d: fnmatch.fnmatchcase(
            d.name.lower(), "*.html")),
        Q("name-bin", "name:*.BIN", lambda d: d.name.lower().endswith(".bin")),
        Q("name-word", "name:*-batch-0[12].jsonl energy",
          lambda d: bool(re.fullmatch(r".*-batch-0[12]\.jsonl", d.name)) and
          d.has("energy")),
        Q("name-empty", "name:aempty-*", lambda d: d.name.startswith("aempty-")),
        Q("blob", "ablob", lambda d: d.has("ablob")),
        Q("jsonl-name", "name:*.jsonl lang:ru",
          lambda d: d.name.endswith(".jsonl") and d.has("ru", ["lang"])),
        # dates: after inclusive, before exclusive, UTC
        Q("after", "after:2024-06-01 climate",
          lambda d: d.has("climate") and rng_q(d, "2024-06-01", None)),
        Q("before", "before:2019-03-01 area:articles",
          lambda d: d.area == "articles" and
          rng_q(d, None, "2019-03-01")),
        Q("range", "after:2021-01-01 before:2021-02-01 energy",
          lambda d: d.has("energy") and
          rng_q(d, "2021-01-01", "2021-02-01")),
        Q("range-time", "market after:2022-05-05T12:00 before:2022-05-20T00:00+02:00",
          lambda d: d.has("market") and
          rng_q(d, "2022-05-05T12:00", "2022-05-20T00:00+02:00")),
        Q("tz", "timezoneword before:2023-03-01",
          lambda d: d.has("timezoneword") and
          rng_q(d, None, "2023-03-01")),
        Q("tz2", "timezoneword after:2023-03-01",
          lambda d: d.has("timezoneword") and
          rng_q(d, "2023-03-01", None)),
        Q("combo", "(river OR ocean) author:smith lang:en after:2020-01-01"
          " before:2023-01-01",
          lambda d: (d.has("river") or d.has("ocean")) and
          d.has("smith", ["author"]) and d.has("en", ["lang"]) and
          rng_q(d, "2020-01-01", "2023-01-01")),
        Q("combo2", "storage* tag:climate NOT tag:science area:articles",
          lambda d: d.prefix("storage") and d.has("climate", ["tags"]) and
          not d.has("science", ["tags"]) and d.area == "articles"),
        Q("combo3", "(river OR ocean) AND author:smith lang:en"
          " after:2020-01-01 before:2023-01-01",
          lambda d: (d.has("river") or d.has("ocean")) and
          d.has("smith", ["author"]) and d.has("en", ["lang"]) and
          rng_q(d, "2020-01-01", "2023-01-01")),
        # FTS5: words side by side bind tighter than NOT, AND and OR
        Q("precedence", "climate NOT energy river",
          lambda d: d.has("climate") and
          not (d.has("energy") and d.has("river"))),
        # a group next to a word is an AND too (query.h: "(a OR b) c")
        Q("group-and", "(glacier OR meadow) storage",
          lambda d: (d.has("glacier") or d.has("meadow")) and
          d.has("storage")),
        Q("group-and2", "storage (glacier OR meadow)",
          lambda d: (d.has("glacier") or d.has("meadow")) and
          d.has("storage")),
        Q("field-group", "author:(ivanova OR tehrani) river",
          lambda d: (d.has("ivanova", ["author"]) or
                     d.has("tehrani", ["author"])) and d.has("river")),
        # special files
        Q("html", "scriptless", lambda d: d.has("scriptless")),
        Q("html-script", "hiddenscriptword",
          lambda d: d.has("hiddenscriptword")),
        Q("malformed", "brokenword", lambda d: d.has("brokenword")),
        Q("badrecord", "brokenrecord", lambda d: d.has("brokenrecord")),
        Q("collision", "collisionword", lambda d: d.has("collisionword")),
        Q("meta", "reuters", lambda d: d.has("reuters")),
        Q("nothing", "qwertyuiop", lambda d: False),
        # more than the default cap of 1000, and limit:
        Q("cap", "json", lambda d: d.has("json")),
        Q("cap-limit", "json limit:20000", lambda d: d.has("json"), 20000),
        Q("limit", "energy limit:7", lambda d: d.has("energy"), 7),
    ]
    return qs


def encode(q):
    return q.replace("%", "%25").replace("/", "%2F")


def entry_name(key):
    """The listing name of a result before any ~N: the file's name, or
    BATCH.L<line>.json for a JSON Lines record."""
    path, _, line = key.partition(":")
    base = os.path.basename(path)
    return base + ".L" + line + ".json" if line else base


def strip_suffix(name):
    """report~2.txt -> report.txt"""
    m = re.fullmatch(r"(.*)~\d+(\.[^.~]*)?", name)
    return m.group(1) + (m.group(2) or "") if m else name


def listing(mnt, q, xattrs):
    """The results of q: keys from .results.json, best first, checked
    against the directory's readdir order (names) and, for the first
    `xattrs` entries, against their user.stashfs.path/line. Returns
    (keys, problems)."""
    d = os.path.join(mnt, ".search", encode(q))
    names = [n for n in os.listdir(d) if n != ".results.json"]
    with open(os.path.join(d, ".results.json"), "rb") as f:
        res = json.load(f)
    keys = ["%s:%d" % (o["path"], o["line"]) if o.get("line") else o["path"]
            for o in res]
    problems = []
    if [strip_suffix(n) for n in names] != [entry_name(k) for k in keys]:
        problems.append("the listing (ls -U) is not .results.json's order:"
                        " %s vs %s" % (names[:4], keys[:4]))
    if len(set(names)) != len(names):
        problems.append("an entry name listed twice")
    for n, k in list(zip(names, keys))[:xattrs]:
        p = os.path.join(d, n)
        path = os.getxattr(p, "user.stashfs.path").decode()
        try:
            line = int(os.getxattr(p, "user.stashfs.line").decode())
        except OSError:
            line = 0
        if ("%s:%d" % (path, line) if line else path) != k:
            problems.append("%s: xattrs say %s:%d, .results.json %s" %
                            (n, path, line, k))
    return keys, problems


def check(mnt, root, subset, only, label, xattrs=5):
    docs = load_docs(root)
    failures = 0
    total = 0
    for name, q, pred, limit in queries():
        if only and name not in only:
            continue
        must, may = set(), set()
        for d in docs.values():
            r = pred(d)
            if r is None:
                may.add(d.key)
            elif r:
                must.add(d.key)
        try:
            keys, problems = listing(mnt, q, xattrs)
        except OSError as e:
            print("FAIL %s [%s] %r: %s" % (label, name, q, e))
            failures += 1
            continue
        total += len(keys)
        if len(set(keys)) != len(keys):
            problems.append("a document listed twice")
        got_set = set(keys)
        extra = got_set - must - may
        missing = must - got_set
        want = len(must) + len(may)
        if limit < want:
            # capped: the best `limit` of them
            if not min(limit, len(must)) <= len(got_set) <= limit:
                problems.append("%d entries, the cap is %d" %
                                (len(got_set), limit))
            missing = set()
        if subset:
            missing = set()
        if extra:
            problems.append("unexpected %s" % sorted(extra)[:5])
        if missing:
            problems.append("missing %d: %s" % (len(missing),
                                               sorted(missing)[:5]))
        if problems:
            failures += 1
            print("FAIL %s [%s] %r: expected %d(+%d), got %d: %s" %
                  (label, name, q, len(must), len(may), len(got_set),
                   "; ".join(problems)))
    print("%s: %d queries, %d results, %d documents, %d failures" %
          (label, len(only) if only else len(queries()), total, len(docs),
           failures))
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "gen":
        opts = {"--seed": "1", "--articles": "2000", "--batches": "4",
                "--records": "150", "--files": "200", "--prefix": "a"}
        args = argv[3:]
        for i in range(0, len(args), 2):
            opts[args[i]] = args[i + 1]
        gen(argv[2], int(opts["--seed"]), int(opts["--articles"]),
            int(opts["--batches"]), int(opts["--records"]),
            int(opts["--files"]), opts["--prefix"])
        return 0
    if len(argv) >= 4 and argv[1] == "check":
        subset = "--subset" in argv
        only, label = None, "check"
        for i, a in enumerate(argv):
            if a == "--only":
                only = set(argv[i + 1].split(","))
            if a == "--label":
                label = argv[i + 1]
        return check(argv[2], argv[3], subset, only, label)
    if len(argv) == 3 and argv[1] == "expect":
        docs = load_docs(argv[2])
        for name, q, pred, limit in queries():
            r = [pred(d) for d in docs.values()]
            print("%-12s %5d %4d  %s" % (name, r.count(True), r.count(None), q))
        return 0
    if len(argv) == 2 and argv[1] == "names":
        for name, q, _, _ in queries():
            print("%s\t%s" % (name, encode(q)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
