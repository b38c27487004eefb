#!/usr/bin/env python3
"""Summarise http-tests/cache-tests results JSON files (stdlib only).

    summarize.py --tests tests.json [--markdown out.md] [--header header.md] NAME=results.json...

tests.json: the suite's test definitions as a list of {suite, id, name, kind, depends_on}
(benches/cache-tests/run.sh writes it from tests/index.mjs; `--suite DIR` makes it here with node).

Each result is classified exactly as the suite's determineTestResult (test-engine/lib/results.mjs)
does for cache-tests.fyi, dependencies honoured:
  pass             result true, kind required or optimal                    (cache-tests.fyi ✅)
  required fail    result false/exception, kind required (the default)      (⛔️)
  optional fail    the same for kind optimal                                (⚠️)
  check yes / no   kind check: informational, not counted as pass or fail  (● / ○)
  setup / harness  ['Setup', ...] (the cache interfered with the test's own setup), a retry
                   ('Setup','retry'), AbortError (10 s request timeout) or another harness error
  dependency       a test named in depends_on did not pass; the test's own result is not counted
  untested         no result (browser-only tests)
"raw" counts ignore depends_on (every test's own result), for reference.
"""
import argparse
import json
import subprocess
import sys

PASS, FAIL, OPT_FAIL, YES, NO = 'pass', 'required_fail', 'optional_fail', 'check_yes', 'check_no'
SETUP, RETRY, HARNESS, DEP, UNTESTED = 'setup_fail', 'retry', 'harness_fail', 'dependency_fail', 'untested'
PASS_TYPES = (PASS, YES)


def classify(tests, tid, results, honor_deps=True):
    """A port of determineTestResult (test-engine/lib/results.mjs)."""
    test = tests[tid]
    result = results.get(tid)
    if result is None:
        return UNTESTED
    if honor_deps and test.get('depends_on'):
        for dep in test['depends_on']:
            if classify(tests, dep, results) not in PASS_TYPES:
                return DEP
    if isinstance(result, list) and result and result[0] == 'Setup':
        return RETRY if len(result) > 1 and result[1] == 'retry' else SETUP
    if result is False:
        return HARNESS
    if isinstance(result, list) and result and result[0] == 'AbortError':
        return HARNESS
    kind = test.get('kind') or 'required'
    if kind == 'required':
        return PASS if result is True else FAIL
    if kind == 'optimal':
        return PASS if result is True else OPT_FAIL
    if kind == 'check':
        return YES if result is True else NO
    raise ValueError(f'unrecognised test kind {kind!r} for {tid}')


def load_tests(args):
    if args.tests:
        with open(args.tests) as f:
            meta = json.load(f)
    else:
        js = ("const { default: s } = await import('./tests/index.mjs'); const o = [];"
              "for (const x of s) for (const t of x.tests) o.push({suite: x.id, id: t.id, name: t.name,"
              " kind: t.kind, depends_on: t.depends_on}); console.log(JSON.stringify(o))")
        meta = json.loads(subprocess.run(['node', '--input-type=module', '-e', js], cwd=args.suite,
                                         check=True, capture_output=True, text=True).stdout)
    return {t['id']: t for t in meta}, [t['id'] for t in meta]


def message(result):
    text = ': '.join(str(x) for x in result) if isinstance(result, list) else str(result)
    return ' '.join(text.split())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--tests', help='test definitions JSON (list of {id, name, kind, depends_on})')
    src.add_argument('--suite', help='cache-tests checkout: read tests/index.mjs with node')
    ap.add_argument('--markdown', help='write a markdown comparison here')
    ap.add_argument('--header', help='markdown file put at the top of --markdown')
    ap.add_argument('results', nargs='+', metavar='NAME=FILE')
    args = ap.parse_args()
    tests, order = load_tests(args)

    summaries = []
    for spec in args.results:
        name, _, path = spec.partition('=')
        if not path:
            name, path = name.rsplit('/', 1)[-1].removesuffix('.json'), name
        with open(path) as f:
            results = json.load(f)
        unknown = sorted(set(results) - set(tests))
        cls = {tid: classify(tests, tid, results) for tid in order}
        raw = {tid: classify(tests, tid, results, honor_deps=False) for tid in order}
        count = {k: sum(1 for v in cls.values() if v == k) for k in
                 (PASS, FAIL, OPT_FAIL, YES, NO, SETUP, RETRY, HARNESS, DEP, UNTESTED)}
        raw_count = {k: sum(1 for v in raw.values() if v == k) for k in (PASS, FAIL, OPT_FAIL)}
        summaries.append((name, results, cls, raw, count, raw_count))

        print(f'== {name} ({path}): {len(results)} results for {len(tests)} tests')
        if unknown:
            print(f'   {len(unknown)} result ids not in the test definitions: {" ".join(unknown)}')
        print(f'passed {count[PASS]}, required failures {count[FAIL]}, optional failures {count[OPT_FAIL]}, '
              f'setup/harness {count[SETUP] + count[RETRY] + count[HARNESS]}')
        print(f'   (setup {count[SETUP]}, retry {count[RETRY]}, harness/timeout {count[HARNESS]}; '
              f'checks yes {count[YES]} / no {count[NO]}; skipped for a failed dependency {count[DEP]}; '
              f'untested {count[UNTESTED]})')
        print(f'   raw, ignoring depends_on: passed {raw_count[PASS]}, required failures {raw_count[FAIL]}, '
              f'optional failures {raw_count[OPT_FAIL]}')
        for title, kinds in (('required failures', (FAIL,)), ('optional failures', (OPT_FAIL,)),
                             ('setup/harness', (SETUP, RETRY, HARNESS))):
            ids = [t for t in order if cls[t] in kinds]
            if ids:
                print(f'-- {title} ({len(ids)}):')
                for t in ids:
                    print(f'   {t}  [{tests[t]["suite"]}] {tests[t]["name"]}  -- {message(results[t])}')
        hidden = [t for t in order if cls[t] == DEP and raw[t] == FAIL]
        if hidden:
            print(f'-- required tests that fail on their own but count as "dependency" ({len(hidden)}):')
            for t in hidden:
                print(f'   {t}  [{tests[t]["suite"]}] {tests[t]["name"]}  -- {message(results[t])}')
        print()

    if args.markdown:
        lines = []
        if args.header:
            with open(args.header) as f:
                lines += [f.read().rstrip(), '']
        names = [s[0] for s in summaries]
        lines += ['| | ' + ' | '.join(names) + ' |', '|---|' + '---:|' * len(names)]
        rows = [('passed', lambda c, r: c[PASS]),
                ('required failures', lambda c, r: c[FAIL]),
                ('optional failures', lambda c, r: c[OPT_FAIL]),
                ('setup / retry / harness', lambda c, r: f'{c[SETUP]} / {c[RETRY]} / {c[HARNESS]}'),
                ('skipped (dependency failed)', lambda c, r: c[DEP]),
                ('checks yes / no', lambda c, r: f'{c[YES]} / {c[NO]}'),
                ('raw (no depends_on): passed / required fail', lambda c, r: f'{r[PASS]} / {r[FAIL]}')]
        for label, fn in rows:
            lines.append(f'| {label} | ' + ' | '.join(str(fn(s[4], s[5])) for s in summaries) + ' |')
        lines += ['', 'Counted as cache-tests.fyi does (test-engine/lib/results.mjs, dependencies honoured).', '']
        for name, results, cls, raw, count, _ in summaries:
            ids = [t for t in order if cls[t] == FAIL]
            lines.append(f'### {name}: required failures ({len(ids)})')
            lines.append('')
            for t in ids:
                lines.append(f'- `{t}` {tests[t]["name"]}: {message(results[t])}')
            lines.append('')
        with open(args.markdown, 'w') as f:
            f.write('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
