"""Device-side driver: lunglesion.bench.bench_one without SimpleITK (absent on the GPU image).

The sample NRRD (gzip raw, LPS, axis-aligned) is read with numpy; everything else is the
package's own bench code. Usage: python gpu_bench.py MODEL DEVICE BATCH [--no-volume]
"""
import gzip, json, re, sys, types
from pathlib import Path
import numpy as np

_stub = types.ModuleType("SimpleITK")  # constants only; any real call would fail loudly
_stub.__getattr__ = lambda attr: f"SimpleITK.{attr}"
sys.modules.setdefault("SimpleITK", _stub)
import lunglesion.io
from lunglesion.image import Image


def read_nrrd(path):
    raw = Path(path).read_bytes()
    head, body = raw.split(b"\n\n", 1)
    fields = dict(line.split(": ", 1) for line in head.decode().splitlines()[1:] if ": " in line)
    sizes = [int(s) for s in fields["sizes"].split()]
    dirs = [[float(v) for v in d.split(",")] for d in re.findall(r"\(([^)]*)\)", fields["space directions"])]
    origin = tuple(float(v) for v in re.findall(r"\(([^)]*)\)", fields["space origin"])[0].split(","))
    assert fields["type"] == "short" and fields["encoding"] == "gzip" and fields["space"] == "left-posterior-superior"
    array = np.frombuffer(gzip.decompress(body), "<i2").reshape(sizes[::-1]).copy()
    spacing = tuple(float(np.linalg.norm(d)) for d in dirs)
    direction = np.array(dirs).T / np.array(spacing)
    return Image(array=array, spacing=spacing, origin=origin, direction=direction)


lunglesion.io.read_image = read_nrrd
from lunglesion.bench import bench_one  # noqa: E402

name, device = sys.argv[1:3]
volume = None if "--no-volume" in sys.argv else Path("Resources/SampleData/lung1_chest_ct.nrrd")
print(json.dumps(bench_one(name, device, volume, 300, int(sys.argv[3]), 5)))
