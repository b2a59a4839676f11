# ---------------------------------------------------------------------------------------------
# The lifeline (engines/real/src/lifeline.py): the same in every generated job.
# ---------------------------------------------------------------------------------------------

import os as _os
import signal as _signal
import stat as _stat
import threading as _threading


def start_lifeline():
    """Ends this job's whole process group (this Python, the JVM it started and the JVM's
    children) when streamlab goes away. streamlab runs the job with a pipe as its stdin and
    holds the other end for the whole run; end of file on it means streamlab has exited, even
    by SIGKILL, when no code of its own could end the group. Run by hand (stdin a terminal or
    a file), the job has no lifeline."""
    try:
        if not _stat.S_ISFIFO(_os.fstat(0).st_mode):
            return
    except OSError:
        return

    def watch():
        # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read would
        # abort the interpreter's shutdown when the job ends normally.
        try:
            while _os.read(0, 4096):
                pass
        except OSError:
            pass
        _os.killpg(_os.getpgid(0), _signal.SIGKILL)

    _threading.Thread(target=watch, name="streamlab-lifeline", daemon=True).start()
