"""Run one lensvault CLI command under cProfile, timing CPU (process_time, all threads).

    python benchmarks/_profile_cli.py OUT_PREFIX lensvault-args...

Writes OUT_PREFIX.prof and OUT_PREFIX.txt (wall and CPU seconds, then the top
functions by cumulative and by own CPU time). CPU time rather than wall time,
because on a shared, overloaded machine wall time is mostly waiting for a core.
"""
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["lensvault", *args]
from lensvault.cli.main import main  # noqa: E402  (import cost is measured separately by --help)

prof = cProfile.Profile(time.process_time)
w0, c0 = time.perf_counter(), time.process_time()
prof.enable()
try:
    main()
except SystemExit:
    pass
prof.disable()
wall, cpu = time.perf_counter() - w0, time.process_time() - c0
prof.dump_stats(out + ".prof")
s = io.StringIO()
s.write(f"lensvault {' '.join(args)}\nwall {wall:.2f} s, CPU {cpu:.2f} s (after imports of lensvault.cli.main)\n\n")
st = pstats.Stats(prof, stream=s).strip_dirs()
st.sort_stats("cumulative").print_stats(45)
st.sort_stats("tottime").print_stats(25)
Path(out + ".txt").write_text(s.getvalue())
print(f"{out}: wall {wall:.2f} s CPU {cpu:.2f} s", file=sys.stderr)
