#!/usr/bin/env python3
"""Rewrites old-style error calls to the enum API of src/lib/yerr.h:

  yerr_set(E, 409, "conflict", ...)      -> yerr_set(E, YE_CONFLICT, ...)
  reply_errorf(R, 404, "not_found", ...) -> reply_errorf(R, YE_NOT_FOUND, ...)
  send_error(C, 400, "bad_request", ...) -> send_error(C, YE_BAD_REQUEST, ...)
  yerr_set(E, YE_..., "database: %s", store_errmsg(S)) -> yerr_db(E, store_errmsg(S))

A status that does not match the code's row in YERR_CODES is reported (the
code wins: the status is derived from it). Run it in a tree's root; it
prints what it could not convert. Idempotent."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
hdr = open(os.path.join(root, "src/lib/yerr.h")).read()
table = {name: (enum, int(st)) for enum, st, name in
         re.findall(r'X\((YE_[A-Z_]+), (\d+), "([a-z_]+)"\)', hdr)}
call = re.compile(r'\b(yerr_set|reply_errorf|send_error)\(\s*([^,()]+(?:\([^()]*\))?[^,()]*),\s*(\d+),\s*"([a-z_]+)",')
dbcall = re.compile(r'yerr_set\(\s*([^,()]+),\s*YE_(?:INTERNAL|DATABASE),\s*"database: %s",\s*(store_errmsg\([^()]*\))\)')
left = 0
for d, _, files in os.walk(os.path.join(root, "src")):
    for f in files:
        if not f.endswith(".c") or f == "yerr.c":
            continue
        p = os.path.join(d, f)
        s = open(p).read()
        orig = s

        def sub(m):
            fn, arg, st, name = m.group(1), m.group(2), int(m.group(3)), m.group(4)
            if name not in table:
                print(f"{p}: unknown code \"{name}\" (add it to YERR_CODES)")
                return m.group(0)
            enum, want = table[name]
            if want != st:
                print(f"{p}: {st} \"{name}\" becomes {enum} ({want})")
            return f"{fn}({arg}, {enum},"
        s = call.sub(sub, s)
        s = dbcall.sub(lambda m: f"yerr_db({m.group(1)}, {m.group(2)})", s)
        if s != orig:
            open(p, "w").write(s)
        for ln, line in enumerate(s.splitlines(), 1):
            if re.search(r'\b(yerr_set|reply_errorf|send_error)\([^;]*\b[1-5]\d\d\b', line) or \
               re.search(r'\b(yerr_set|reply_errorf)\(\s*[^,]+,\s*$', line):
                print(f"{p}:{ln}: convert by hand: {line.strip()}")
                left += 1
print(f"{left} call(s) left to convert by hand")
