"""Entry point of funcd's Python runtime; the runtime itself is funcd_runtime.py.

Started by the daemon as `python3 -I -u bootstrap.py` in the function's code root. It
stays this small because Python compiles the script it is given from source on every
start, while an imported module loads from the bytecode in __pycache__, which the
daemon compiles once when it starts.
"""
import os
import sys

# -I leaves the script's directory off sys.path. It is put there only for this import,
# so that the runtime's modules can neither shadow nor stand in for the handler's.
sys.path.insert(0, os.path.dirname(__file__))
try:
    import funcd_runtime
finally:
    del sys.path[0]

if __name__ == "__main__":
    funcd_runtime.main()
