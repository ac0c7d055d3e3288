"""A runtime template: funcd's Python runtime, imported once and forked into sandboxes.

Started by the daemon as `python3 -I -u funcd_template.py <native module> <control fd>
[module...]`, with the same interpreter and flags as a worker. It imports the runtime (and
the named modules), then hands the control socket to the native half, which serves the
daemon's fork requests and returns only in a forked runtime: inside its own sandbox, as
the worker's user, with the environment the daemon sent it. This process never holds a
function's code, environment or secrets; what it imports here is shared, copy-on-write,
by every runtime forked from it.
"""
import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
try:
    import funcd_runtime
finally:
    del sys.path[0]

_native = ctypes.CDLL(sys.argv[1])
_control = int(sys.argv[2])
for _name in sys.argv[3:]:
    __import__(_name)

_serve = _native.funcd_template_serve
_serve.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
_serve.restype = ctypes.c_int
_env = ctypes.c_void_p()
_env_len = ctypes.c_size_t()
# The interpreter is single-threaded here, as it must be when the native half forks.
if _serve(_control, ctypes.byref(_env), ctypes.byref(_env_len)) != 0:
    sys.exit(1)

# From here on: a runtime in its sandbox. First what a fork through os.fork() would do
# (reseed `random`, reset the interpreter's thread and lock state), then the worker's
# own environment in place of the template's.
ctypes.pythonapi.PyOS_AfterFork_Child()


def _take_environment(block):
    os.environ.clear()
    for entry in block.split(b"\0"):
        if entry:
            key, _, value = entry.partition(b"=")
            os.environb[key] = value


_take_environment(ctypes.string_at(_env, _env_len.value))
# numpy's global generator has no fork hook: a preloaded numpy would otherwise give every
# worker the same stream.
if "numpy.random" in sys.modules:
    sys.modules["numpy.random"].seed()
ctypes.CDLL(None).free(_env)
del _env, _env_len, _serve, _native, _control, _take_environment
sys.argv = [os.path.join(os.environ.get("LAMBDA_RUNTIME_DIR", "/var/runtime"), "python", "bootstrap.py")]
funcd_runtime.main()
