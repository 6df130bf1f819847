"""Which mmcv ops to build: ``cpu`` or ``cuda``. Run by ``tools/install_deps.sh``.

    python tools/mmcv_flavour.py      # prints cpu|cuda on stdout, an explanation on stderr

mmcv compiles its CUDA kernels only when ``FORCE_CUDA=1`` or a GPU is visible at build time *and*
nvcc can be found. Built without them, every mmcv op on a CUDA tensor (NMS at test time,
RoIAlign in Mask R-CNN, deformable convs) fails later with "not compiled with GPU support", so a
GPU user must get the CUDA build without having to know the flag.
"""
import os
import shutil
import sys


def find_nvcc(env=os.environ):
    """nvcc on PATH, or under CUDA_HOME / CUDA_PATH, or /usr/local/cuda; None if absent."""
    found = shutil.which('nvcc', path=env.get('PATH'))
    if found:
        return found
    for root in (env.get('CUDA_HOME'), env.get('CUDA_PATH'), '/usr/local/cuda'):
        if root and os.access(os.path.join(root, 'bin', 'nvcc'), os.X_OK):
            return os.path.join(root, 'bin', 'nvcc')
    return None


def decide(torch_cuda, gpu_visible, nvcc, force_cuda='0'):
    """(flavour, message) from the facts: torch's CUDA version (None for a CPU build of torch),
    whether a GPU is visible, the nvcc path (None if absent) and the FORCE_CUDA setting."""
    if force_cuda == '1':
        if nvcc is None:
            return 'cuda', ('FORCE_CUDA=1 but nvcc was not found (PATH, CUDA_HOME): the CUDA '
                            'build will fail; install the CUDA toolkit first')
        return 'cuda', f'FORCE_CUDA=1: building the CUDA ops with {nvcc}'
    if not gpu_visible:
        return 'cpu', 'no GPU visible: building the CPU ops'
    if torch_cuda is None:
        return 'cpu', ('a GPU is visible but this torch is a CPU-only build: building the CPU '
                       'ops; install a CUDA build of torch to use the GPU')
    if nvcc is None:
        return 'cpu', (
            f'WARNING: a GPU is visible and torch uses CUDA {torch_cuda}, but nvcc (the CUDA '
            'compiler) was not found on PATH or under CUDA_HOME, so mmcv is built with CPU ops '
            'only. Training runs on the GPU, but every mmcv op on a CUDA tensor fails with '
            '"not compiled with GPU support": NMS when testing or evaluating a detector, '
            'RoIAlign in Mask R-CNN / Faster R-CNN, deformable convs. Fix: install the CUDA '
            f'toolkit {torch_cuda} (nvcc), put it on PATH or set CUDA_HOME, then run '
            '`make install` again (or FORCE_CUDA=1 make install).')
    return 'cuda', (f'GPU visible, torch CUDA {torch_cuda}, nvcc {nvcc}: building the CUDA ops '
                    '(cached separately from the CPU build)')


def main():
    import torch
    flavour, message = decide(torch.version.cuda, torch.cuda.is_available(), find_nvcc(),
                              os.environ.get('FORCE_CUDA', '0'))
    print(f'[mmext] {message}', file=sys.stderr)
    print(flavour)


if __name__ == '__main__':
    main()
