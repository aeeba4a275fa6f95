"""Run a lunglesion module on the GPU image, which lacks SimpleITK (the 2D dRAM chain never calls it)."""
import runpy, sys, types

_stub = types.ModuleType("SimpleITK")
_stub.__getattr__ = lambda attr: f"SimpleITK.{attr}"
sys.modules.setdefault("SimpleITK", _stub)
module = sys.argv[1]
sys.argv = [module] + sys.argv[2:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
