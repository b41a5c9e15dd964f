"""The supernet's fake quantization: the grids of ``grids.py`` computed with a few fused torch
ops (straight-through rounding, power-of-two scale from a learned threshold, saturation), all bit
choices of a layer in one autograd node, because Brevitas layers are launch-bound (4-17x slower
than plain PyTorch, docs/design.md, "Speed"). Equal to Brevitas' arithmetic by test.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

from connas4ml_torch.quant.grids import int_range

__all__ = ["compile_quantizers", "fake_quant", "fused_fake_quant", "mixed_fake_quant"]


def _round_ste(x: Tensor) -> Tensor:
    # torch.round rounds half to even, as Brevitas' RoundSte and QONNX's ROUND do.
    return x + (torch.round(x) - x).detach()


def _ceil_ste(x: Tensor) -> Tensor:
    return x + (torch.ceil(x) - x).detach()


_LN2 = math.log(2.0)


def _kernel_forward(x: Tensor, s: Tensor, w: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """``sum_k w_k clamp(round(x / s_k), lo_k, hi_k)`` on a flat ``x`` (compiled: one pass)."""
    out = torch.zeros_like(x)
    for k in range(s.shape[0]):  # K is static: unrolled into one loop over x
        out = out + w[k] * torch.minimum(torch.maximum(torch.round(x / s[k]), lo[k]), hi[k])
    return out


def _kernel_backward(x: Tensor, g: Tensor, s: Tensor, w: Tensor, p: Tensor, lo: Tensor,
                     hi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(dL/dx, dL/dt, dL/dp)`` of :class:`_MixedFakeQuant` from ``x`` alone (compiled: one
    pass over ``x`` and ``g`` with the reductions fused; nothing but ``x`` is kept). The sums
    accumulate in float64: a compiled float32 reduction adds in vector lanes, less precisely
    than ``torch.sum``."""
    m, d, gc = torch.zeros_like(x), torch.zeros_like(x), []
    for k in range(s.shape[0]):
        y = x / s[k]
        r = torch.round(y)
        c = torch.minimum(torch.maximum(r, lo[k]), hi[k])
        inside = (r == c).to(x.dtype)
        m = m + p[k] * inside
        d = d + w[k] * (c - y * inside)
        gc.append((g * c).double().sum())  # float64 accumulators: free in a fused pass
    return g * m, ((g * d).double().sum() * _LN2).to(x.dtype), torch.stack(gc).to(x.dtype) * s


_GRIDS: dict = {}


def _mix(w: Tensor, a: Tensor, out: Tensor | None = None) -> Tensor:
    """``w @ a`` for ``w`` ``[1, K]``, ``a`` ``[K, n]`` (a product when K is 1; into ``out``)."""
    return torch.mm(w, a, out=out) if w.shape[1] > 1 else torch.mul(a, w, out=out)


def _grid(bits, signed, narrow, dtype, device):
    """Per-choice integer ranges ``[K, 1]`` and divisors ``2**(b - signed)`` ``[1, K]``, built
    once per layout."""
    key = (bits, signed, narrow, dtype, device)
    c = _GRIDS.get(key)
    if c is None:
        lo_hi = [int_range(b, signed, narrow) for b in bits]
        col = lambda v: torch.tensor(v, dtype=dtype, device=device).view(-1, 1)  # noqa: E731
        c = (col([a for a, _ in lo_hi]), col([b for _, b in lo_hi]),
             col([float(2 ** (b - 1 if signed else b)) for b in bits]).view(1, -1))
        _GRIDS[key] = c
    return c


_COMPILED: dict = {"on": False, "forward": None, "backward": None}


def compile_quantizers(enable: bool = True) -> bool:
    """Run the supernet's quantizer arithmetic as kernels built by ``torch.compile`` (opt-in).

    The eager quantizer makes ~10 passes over each activation per step; the compiled one makes
    one forward and one backward (x and the gradient read once, the reductions fused), and
    keeps only ``x`` for the backward pass. That pays on large activations (conv feature maps)
    and long searches: compiling takes tens of seconds the first time (inductor's on-disk
    cache makes later processes much faster), and each compiled call costs a few tens of
    microseconds of dispatch, about what the eager quantizer costs on a small tensor. Kernels
    are compiled once per number of choices and dtype, with dynamic sizes (no recompilation for
    another batch size or layer). Falls back to eager, with a warning, if compilation fails.
    Returns whether the compiled kernels are on.
    """
    if enable and _COMPILED["forward"] is None:
        _COMPILED["forward"] = torch.compile(_kernel_forward, dynamic=False)
        _COMPILED["backward"] = torch.compile(_kernel_backward, dynamic=False)
    _COMPILED["on"] = bool(enable)
    return _COMPILED["on"]


def _compiled_call(name: str, *args: Tensor):
    """A compiled kernel (flat tensors dynamic in size), or ``None`` once compilation failed."""
    from torch._dynamo.decorators import mark_unbacked

    # detached: no guard (and no recompilation) on requires_grad; unbacked: no guard on the size
    args = tuple(a.detach() for a in args)
    for a in args[:2 if name == "backward" else 1]:
        mark_unbacked(a, 0)
    try:
        return _COMPILED[name](*args)
    except Exception as exc:  # noqa: BLE001 (any compiler failure: fall back to eager)
        import warnings

        warnings.warn(f"connas4ml_torch: compiled quantizer kernels failed ({exc!r:.300}); "
                      "falling back to the eager quantizer", RuntimeWarning, stacklevel=3)
        _COMPILED["on"] = False
        return None


if os.environ.get("CONNAS4ML_COMPILE", "").strip() not in ("", "0"):
    compile_quantizers(True)


class _MixedFakeQuant(torch.autograd.Function):
    """``sum_b p_b Q_b(x)`` in one autograd node (``p=None``: one bit width, weight 1).

    The composed version (one ``fake_quant`` per bit width, then a weighted sum) records ~10
    autograd nodes per choice and keeps several full-size intermediates; on the supernet's hot
    path that costs more than the matmul. Here the gradients are the composed version's,
    written out (straight-through round, a clamp that stops the gradient outside the range,
    ``d/dt`` through ``scale = 2**ceil_ste(t) / 2**(b - signed)``) and regrouped so that the
    backward pass needs no second quantization of ``x``. With ``c_k`` the clamped integers,
    ``y_k = x / s_k`` and ``in_k`` whether ``round(y_k)`` lies in the range:

    * ``dL/dx = g * m`` with ``m = sum_k p_k in_k``;
    * ``dL/dp_k = s_k sum(g * c_k)``;
    * ``dL/dt = ln 2 * sum(g * d)`` with ``d = sum_k p_k s_k (c_k - y_k in_k)``: the same as
      ``ln 2 sum_k p_k s_k (sum(g c_k) - sum(g y_k in_k))``, but each ``c_k - y_k in_k`` (a
      rounding residual, or the saturated value) is exact, so no large sums cancel.

    The forward pass computes ``m`` and ``d`` while it quantizes (only when a gradient is
    needed) and keeps them for the backward pass. All choices are computed at once on a
    stacked ``[K, n]`` view (few ops: small inputs are launch bound); small inputs also keep
    ``c``, large ones (memory bound) run in blocks whose temporaries stay in cache and quantize
    ``x`` again, block by block, in the backward pass for ``dL/dp`` only. ``index`` runs one
    choice. Sums accumulate in float64. No host synchronisation anywhere.
    """

    # up to this many elements: one stacked block, c kept for the backward pass; above it:
    # blocks of BLOCK elements, x kept
    STACK_LIMIT = 1 << 16
    BLOCK = 1 << 16
    # with compile_quantizers(): inputs from this size on take the compiled kernels; smaller
    # ones stay eager (a compiled call's dispatch costs more than the eager ops there)
    COMPILE_MIN = 1 << 14

    @staticmethod
    def forward(ctx, x, t, p, bits, signed, narrow, index):
        # every op counts on the small tensors (launch bound): no op that is not needed
        lo, hi, div = _grid(bits, signed, narrow, x.dtype, x.device)
        need_x, need_t, need_p = ctx.needs_input_grad[:3]
        top = torch.exp2(torch.ceil(t))
        s = (top if top.dtype == x.dtype else top.to(x.dtype)) / div  # [1, K] steps
        ctx.zero_p = index is not None  # one choice runs; p only gets a zero gradient
        ctx.t_dtype = t.dtype
        ctx.p_meta = None if p is None else (p.shape, p.dtype)
        if index is not None:  # the bounds stay tensors (no host synchronisation)
            i = index.reshape(1)
            s, lo, hi, p = s.index_select(1, i), lo[i], hi[i], None
        elif p is not None:
            p = p.reshape(1, -1) if p.dtype == x.dtype else p.to(x.dtype).reshape(1, -1)
        w = s if p is None else s * p  # [1, K]: p_k * s_k
        ctx.stacked = x.numel() <= _MixedFakeQuant.STACK_LIMIT
        ctx.compiled = _COMPILED["on"] and x.numel() >= _MixedFakeQuant.COMPILE_MIN
        if ctx.compiled:
            out = _compiled_call("forward", x.reshape(-1), s[0], w[0], lo[:, 0], hi[:, 0])
            ctx.compiled = out is not None
            if ctx.compiled:
                ctx.save_for_backward(x, p, s, lo, hi)
                return out.view_as(x)
        xr = x.reshape(1, -1)
        if ctx.stacked:
            out, m, d, c = _MixedFakeQuant._stack(xr, s, lo, hi, w, p, need_x, need_t)
            keep = c if need_p and not ctx.zero_p else None
        else:  # the same in blocks of BLOCK elements (their temporaries stay in cache)
            out = torch.empty_like(xr)
            m = torch.empty_like(xr) if need_x else None
            d = torch.empty_like(xr) if need_t else None
            for j in range(0, xr.shape[1], _MixedFakeQuant.BLOCK):
                sl = slice(j, j + _MixedFakeQuant.BLOCK)
                _MixedFakeQuant._stack(xr[:, sl], s, lo, hi, w, p, need_x, need_t, out[:, sl],
                                       None if m is None else m[:, sl],
                                       None if d is None else d[:, sl])
            keep = x if need_p and not ctx.zero_p else None
        ctx.save_for_backward(keep, m, d, s, lo, hi)
        return out.view_as(x)

    @staticmethod
    def _stack(xr, s, lo, hi, w, p, need_m, need_d, out=None, m=None, d=None):
        """All K choices of one block ``xr`` ``[1, n]`` at once: ``(out, m, d, c)``, written
        into ``out``, ``m``, ``d`` where given; ``c``: the clamped integers ``[K, n]``."""
        y = xr / s.t()  # [K, n]
        r = torch.round(y)
        c = torch.maximum(r, lo)  # (clamp with tensor bounds is ~5x slower on CPU)
        torch.minimum(c, hi, out=c)
        out = _mix(w, c, out)
        if need_m or need_d:
            inside = r.eq_(c)  # 1.0 where round(y) is in the range
            if need_m and p is None:
                m = inside if m is None else m.copy_(inside)
            elif need_m:
                m = _mix(p, inside, m)
            if need_d:
                d = _mix(w, torch.addcmul(c, y, inside, value=-1.0), d)
        return out, m, d, c

    @staticmethod
    def backward(ctx, g):
        if ctx.compiled:
            return _MixedFakeQuant._compiled_backward(ctx, g)
        keep, m, d, s, lo, hi = ctx.saved_tensors
        need_x, need_t, need_p = ctx.needs_input_grad[:3]
        gr = g.reshape(1, -1)
        gx = (gr * m).view_as(g) if need_x else None
        gt = gp = None
        if need_t:
            gt = (gr * d).sum(dtype=torch.float64) * _LN2  # float64 accumulators
            gt = gt if gt.dtype == ctx.t_dtype else gt.to(ctx.t_dtype)
        if need_p:
            shape, dtype = ctx.p_meta
            if ctx.zero_p:
                gp = torch.zeros(shape, dtype=dtype, device=g.device)
            elif ctx.stacked:  # keep: the stacked clamped integers c
                gp = (keep * gr).sum(1, dtype=torch.float64) * s.reshape(-1)
            else:  # keep: x; quantize it again, block by block
                xr = keep.reshape(1, -1)
                gc = torch.zeros(s.shape[1], dtype=torch.float64, device=s.device)
                for j in range(0, xr.shape[1], _MixedFakeQuant.BLOCK):
                    sl = slice(j, j + _MixedFakeQuant.BLOCK)
                    c = torch.round_(xr[:, sl] / s.t())
                    torch.maximum(c, lo, out=c)
                    torch.minimum(c, hi, out=c)
                    gc += c.mul_(gr[:, sl]).sum(1, dtype=torch.float64)
                gp = gc * s.reshape(-1)
            if gp.dtype != dtype or gp.shape != shape:
                gp = gp.to(dtype).reshape(shape)
        return gx, gt, gp, None, None, None, None

    @staticmethod
    def _compiled_backward(ctx, g):
        x, p, s, lo, hi = ctx.saved_tensors
        need_x, need_t, need_p = ctx.needs_input_grad[:3]
        sf, lo, hi = s[0], lo[:, 0], hi[:, 0]
        pf = torch.ones_like(sf) if p is None else p[0]
        res = _compiled_call("backward", x.reshape(-1), g.reshape(-1), sf, sf * pf, pf, lo, hi)
        if res is None:  # compilation failed: the eager arithmetic, from x
            res = _kernel_backward(x.reshape(-1), g.reshape(-1), sf, sf * pf, pf, lo, hi)
        gx, gt, gp = res
        gx = gx.view_as(g) if need_x else None
        gt = (gt if gt.dtype == ctx.t_dtype else gt.to(ctx.t_dtype)) if need_t else None
        if need_p:
            shape, dtype = ctx.p_meta
            gp = (torch.zeros(shape, dtype=dtype, device=g.device) if ctx.zero_p
                  else gp.to(dtype).reshape(shape))
        else:
            gp = None
        return gx, gt, gp, None, None, None, None


class _NoGradCtx:
    """The ``ctx`` of a :meth:`_MixedFakeQuant.forward` no gradient will be taken of (grad mode
    off, or no input requires one): nothing needed, nothing kept. The autograd context would say
    every input that requires a gradient needs one even under ``torch.no_grad()``, and the
    forward pass would compute and keep what only the backward pass reads."""

    needs_input_grad = (False,) * 7

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        pass


def _apply(x: Tensor, t: Tensor, p: Tensor | None, bits: tuple[int, ...], signed: bool,
           narrow: bool, index: Tensor | None) -> Tensor:
    """:class:`_MixedFakeQuant`, or its forward arithmetic alone (the same ops, so the same
    values) where no gradient can be taken: a validation pass, a sampled network scored
    without gradient."""
    if torch.is_grad_enabled() and (x.requires_grad or t.requires_grad
                                    or (p is not None and p.requires_grad)):
        return _MixedFakeQuant.apply(x, t, p, bits, signed, narrow, index)
    return _MixedFakeQuant.forward(_NoGradCtx(), x, t, p, bits, signed, narrow, index)


def mixed_fake_quant(x: Tensor, log2_threshold: Tensor, bits: tuple[int, ...], probs: Tensor | None,
                     signed: bool, narrow: bool = False, index: Tensor | None = None) -> Tensor:
    """``sum_b probs[b] * fake_quant(x, t, bits[b])`` as one fused autograd node (same values).

    ``index`` (a 0-dim integer tensor): the forward pass runs that one choice only, as with
    one-hot ``probs``; ``probs`` (may be ``None``) then receive a zero gradient, as they do
    through ``one_hot + 0 * probs``.
    """
    if torch.compiler.is_compiling():
        return _traceable_mix(x, log2_threshold, tuple(bits), probs, signed, narrow, index)
    return _apply(x, log2_threshold, probs, tuple(bits), signed, narrow, index)


def _traceable_mix(x, t, bits, p, signed, narrow, index):
    """:class:`_MixedFakeQuant` for ``torch.compile`` of a whole supernet: the same arithmetic
    and gradients in a form dynamo traces (no data-dependent Python), fused by inductor."""
    lo, hi, div = _grid(bits, signed, narrow, x.dtype, x.device)
    if index is not None:  # that choice alone; p gets the zero gradient of one_hot + 0 * p
        i = index.reshape(1)
        one = torch.ones(1, dtype=x.dtype, device=x.device)
        out = _TraceableMix.apply(x, t, one, lo[i, 0], hi[i, 0], div[0, i])
        return out if p is None else out + 0.0 * p.sum()
    if p is None:
        p = torch.ones(1, dtype=x.dtype, device=x.device)
    return _TraceableMix.apply(x, t, p.to(x.dtype), lo[:, 0], hi[:, 0], div[0])


class _TraceableMix(torch.autograd.Function):
    """The compiled kernels of :func:`compile_quantizers` as one autograd node (keeps ``x``)."""

    @staticmethod
    def forward(ctx, x, t, p, lo, hi, div):
        s = torch.exp2(torch.ceil(t)).to(x.dtype) / div
        ctx.save_for_backward(x, t, p, lo, hi, div)
        return _kernel_forward(x.reshape(-1), s, s * p, lo, hi).view_as(x)

    @staticmethod
    def backward(ctx, g):
        x, t, p, lo, hi, div = ctx.saved_tensors
        s = torch.exp2(torch.ceil(t)).to(x.dtype) / div
        gx, gt, gp = _kernel_backward(x.reshape(-1), g.reshape(-1), s, s * p, p, lo, hi)
        return gx.view_as(x), gt.to(t.dtype), gp.to(p.dtype), None, None, None


def fused_fake_quant(x: Tensor, log2_threshold: Tensor, bits: int, signed: bool,
                     narrow: bool = False) -> Tensor:
    """:func:`fake_quant` as one autograd node: the same values and gradients in a few ops
    (the supernet's biases and single-choice quantizers)."""
    if torch.compiler.is_compiling():
        return _traceable_mix(x, log2_threshold, (int(bits),), None, signed, narrow, None)
    return _apply(x, log2_threshold, None, (int(bits),), signed, narrow, None)


def fake_quant(
    x: Tensor, log2_threshold: Tensor, bits: int, signed: bool, narrow: bool = False
) -> Tensor:
    """Quantize-dequantize ``x`` on the fixed-point grid; straight-through gradients.

    Same forward arithmetic as a Brevitas ``*FixedPoint`` quantizer with a PARAMETER threshold:
    ``scale = 2**ceil(t) / 2**(bits - signed)``, ``round_half_even(x / scale)`` clamped to the
    integer range, times ``scale``. Gradients reach ``x`` (zero where saturated) and ``t``.
    """
    lo, hi = int_range(bits, signed, narrow)
    scale = torch.exp2(_ceil_ste(log2_threshold)) / float(2 ** (bits - 1 if signed else bits))
    q = torch.clamp(_round_ste(x / scale), lo, hi)
    return q * scale
