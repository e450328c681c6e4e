#!/usr/bin/env python3
"""Link-time stand-ins for the CUDA libraries candle links against (dynamic linking through
cudarc): libcuda (the driver's), libnvrtc, libcurand, libcublas, libcublasLt and libcudnn, each
with the soname of the CUDA 13 library it stands for. The GPU check's binaries are built on a
machine without a GPU or those libraries; on the device machine the real ones (the driver's
libcuda.so.1, the Python environment's NVIDIA wheels) are loaded instead, since the stubs are
not carried onto its library path. Where no GPU is (the rehearsal), the stubs let the binaries
start: every CUDA call fails with error 999, so `--device auto` falls back to the CPU and says
why. Usage: cuda-stubs.py CUDARC_SRC OUT_DIR
"""
import pathlib
import re
import subprocess
import sys

LIBRARIES = {  # cudarc module: (file name for the linker, soname at run time)
    "driver": ("libcuda.so", "libcuda.so.1"),
    "nvrtc": ("libnvrtc.so", "libnvrtc.so.13"),
    "curand": ("libcurand.so", "libcurand.so.10"),
    "cublas": ("libcublas.so", "libcublas.so.13"),
    "cublaslt": ("libcublasLt.so", "libcublasLt.so.13"),
    "cudnn": ("libcudnn.so", "libcudnn.so.9"),
}
MESSAGE = "CUDA is absent here (xray-gan's link-time stub library was loaded, not NVIDIA's)"
FUNCTION = re.compile(r"pub unsafe fn (\w+)\((.*?)\)(?:\s*->\s*([^{]+))?\s*\{", re.S)


def stub_source(module_source: str) -> str:
    lines = ["#include <stddef.h>"]
    seen = set()
    for name, _, ret in FUNCTION.findall(module_source):
        if name in seen:
            continue
        seen.add(name)
        ret = (ret or "").strip()
        if name in ("cuGetErrorString", "cuGetErrorName"):
            lines.append(
                f'int {name}(int e, const char **s) {{ if (s) *s = "{MESSAGE}"; return 0; }}'
            )
        elif ret.startswith("*const") and "c_char" in ret:
            lines.append(f'const char *{name}(void) {{ return "{MESSAGE}"; }}')
        else:
            lines.append(f"long {name}(void) {{ return 999; }}")
    return "\n".join(lines) + "\n"


def main() -> None:
    cudarc, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for module, (file_name, soname) in LIBRARIES.items():
        source = (cudarc / "src" / module / "sys" / "mod.rs").read_text()
        c_file = out / f"{module}-stub.c"
        c_file.write_text(stub_source(source))
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-O0", f"-Wl,-soname,{soname}", "-o", str(out / file_name),
             str(c_file)],
            check=True,
        )
        c_file.unlink()
        link = out / soname
        if not link.exists():
            link.symlink_to(file_name)


if __name__ == "__main__":
    main()
