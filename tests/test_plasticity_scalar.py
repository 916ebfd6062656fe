"""The vectorised learner against the learning contract transcribed again here, one synapse at a
time in plain Python integers (README, "The learning contract"), on random small plastic networks."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model.learning import learn_stream
from spikegate.model.plasticity import Plasticity


def _clip(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def _srange(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class ScalarLayer:
    """One layer's persistent state (weights, offsets) and its per-sample run, in Python ints."""

    def __init__(self, layer: Layer):
        self.L = layer
        self.p = layer.plasticity
        self.W = [[int(w) for w in row] for row in layer.weights]
        self.off = [0] * layer.n if self.p is None or self.p.offsets is None else [int(o) for o in self.p.offsets]
        self.P, self.Q, self.E = [0] * layer.n_in, [0] * layer.n, [[0] * layer.n for _ in range(layer.n_in)]

    def _bounds(self):
        lo, hi = _srange(self.L.weight_bits)
        p = self.p
        return (lo if p.w_min is None else p.w_min), (hi if p.w_max is None else p.w_max)

    def run(self, xs, learn, rewards):
        L, p = self.L, self.p
        n, n_in = L.n, L.n_in
        vlo, vhi = _srange(L.membrane_bits)
        v, r = [0] * n, [0] * n
        self.P, self.Q, self.E = [0] * n_in, [0] * n, [[0] * n for _ in range(n_in)]
        out = []
        for t, x in enumerate(xs):
            theta = [L.threshold + self.off[j] for j in range(n)]
            vn, above = [0] * n, [False] * n
            for j in range(n):
                lv = v[j]
                if L.leak.kind == "shift":
                    lv = lv - (lv >> L.leak.k)
                elif L.leak.kind == "multiply":
                    lv = (lv * L.leak.m) >> L.leak.frac_bits
                total = lv + int(L.bias[j]) + sum(self.W[i][j] for i in range(n_in) if x[i])
                vn[j] = _clip(total, vlo, vhi)
                above[j] = not L.readout and r[j] == 0 and vn[j] > theta[j]
            fired = list(above)
            k = 0 if p is None else p.wta
            if k:
                ranked = sorted((j for j in range(n) if above[j]), key=lambda j: (-(vn[j] - theta[j]), j))
                fired = [j in ranked[:k] for j in range(n)]
            nv, nr = list(v), list(r)
            for j in range(n):
                if L.readout:
                    nv[j] = vn[j]
                elif r[j] > 0:
                    nr[j] = r[j] - 1
                elif fired[j]:
                    nv[j] = 0 if L.reset == "zero" else vn[j] - theta[j]
                    nr[j] = L.refractory
                else:
                    nv[j] = vn[j]
                    if k and any(fired) and p.inhibition == "reset":
                        nv[j] = 0
                    elif k and any(fired) and p.inhibition == "reduce":
                        nv[j] = max(vn[j] - p.inhibit, vlo)
            v, r = nv, nr
            out.append(fired)
            if p is None or not learn:
                continue
            top = (1 << p.trace_bits) - 1
            P = [min(self.P[i] - (self.P[i] >> p.pre_decay) + (p.pre_inc if x[i] else 0), top) for i in range(n_in)]
            Qd = [self.Q[j] - (self.Q[j] >> p.post_decay) for j in range(n)]
            wlo, whi = self._bounds()
            elo, ehi = _srange(p.elig_bits)
            for i in range(n_in):
                for j in range(n):
                    d = 0
                    if fired[j]:
                        d += ((p.a_plus * P[i]) >> p.rate_shift) - p.ltp_offset
                        if p.weight_decay:
                            d -= self.W[i][j] >> p.weight_decay
                    if x[i]:
                        d -= (p.a_minus * Qd[j]) >> p.rate_shift
                    if p.rule == "stdp":
                        self.W[i][j] = _clip(self.W[i][j] + d, wlo, whi)
                    else:
                        e = self.E[i][j]
                        self.E[i][j] = _clip(e - (e >> p.elig_decay) + d, elo, ehi)
            if p.rule == "rstdp" and rewards is not None and rewards[t]:
                self.reward(rewards[t])
            self.Q = [min(Qd[j] + (p.post_inc if fired[j] else 0), top) for j in range(n)]
            self.P = P
            lim = (1 << (L.membrane_bits - 1)) - 2 - L.threshold
            for j in range(n):
                o = self.off[j]
                if p.theta_decay and (t + 1) % p.theta_every == 0:
                    o = o - (o >> p.theta_decay)
                self.off[j] = min(o + (p.theta_inc if fired[j] else 0), lim)
        return out

    def reward(self, rw):
        if self.p is None or self.p.rule != "rstdp":
            return
        wlo, whi = self._bounds()
        for i in range(self.L.n_in):
            for j in range(self.L.n):
                self.W[i][j] = _clip(self.W[i][j] + ((rw * self.E[i][j]) >> self.p.reward_shift), wlo, whi)


@st.composite
def plastic_networks(draw):
    n_in = draw(st.integers(1, 4))
    # Now and then a layer wider than 16, where numpy's unstable sorts stop being insertion sorts.
    sizes = [n_in] + [draw(st.integers(1, 4) | st.just(18)) for _ in range(draw(st.integers(1, 2)))]
    layers = []
    for l in range(len(sizes) - 1):
        wb, vb = draw(st.integers(3, 7)), draw(st.integers(5, 10))
        wlo, whi = _srange(wb)
        readout = l == len(sizes) - 2 and draw(st.booleans())
        n = sizes[l + 1]
        w = draw(st.lists(st.integers(wlo, whi), min_size=sizes[l] * n, max_size=sizes[l] * n))
        vlo, vhi = _srange(vb)
        bias = draw(st.lists(st.integers(vlo // 4, vhi // 4), min_size=n, max_size=n))
        leak = draw(st.sampled_from([Leak.none(), Leak.shift(1), Leak.shift(3), Leak.multiply(3, 2)]))
        common = dict(weights=np.array(w).reshape(sizes[l], n), bias=bias, weight_bits=wb, membrane_bits=vb,
                      leak=leak, readout=readout)
        if not readout:
            # The largest threshold leaves the offsets no room: theta_inc saturates at once.
            common.update(threshold=draw(st.integers(0, vhi // 2) | st.just(vhi - 1)), reset=draw(st.sampled_from(["zero", "subtract"])),
                          refractory=draw(st.integers(0, 2)))
        p = None
        if l == len(sizes) - 2 or draw(st.booleans()):
            p = draw(plasticities(n, wb, vb, common.get("threshold", 0), readout))
            lo, hi = (wlo if p.w_min is None else p.w_min), (whi if p.w_max is None else p.w_max)
            common["weights"] = np.clip(common["weights"], lo, hi)  # learning bounds hold from the start
        layers.append(Layer(plasticity=p, **common))
    return Network(layers)


@st.composite
def plasticities(draw, n, wb, vb, threshold, readout):
    tb = draw(st.integers(1, 8))
    rule = draw(st.sampled_from(["stdp", "rstdp"]))
    wlo, whi = _srange(wb)
    a, b = sorted(draw(st.lists(st.integers(wlo, whi), min_size=2, max_size=2)))
    kw = dict(rule=rule, trace_bits=tb, pre_decay=draw(st.integers(1, 4)), post_decay=draw(st.integers(1, 4)),
              pre_inc=draw(st.integers(1, (1 << tb) - 1)), post_inc=draw(st.integers(1, (1 << tb) - 1)),
              a_plus=draw(st.integers(0, 4)), a_minus=draw(st.integers(0, 4)), rate_shift=draw(st.integers(0, 4)),
              ltp_offset=draw(st.integers(0, 3)), weight_decay=draw(st.integers(0, 3)),
              w_min=draw(st.sampled_from([None, a])), w_max=draw(st.sampled_from([None, b])))
    if not readout:
        wta = draw(st.integers(0, n))
        inhibition = draw(st.sampled_from(["none", "reset", "reduce"])) if wta else "none"
        top = (1 << (vb - 1)) - 2 - threshold
        kw.update(wta=wta, inhibition=inhibition, inhibit=draw(st.integers(0, 9)) if inhibition == "reduce" else 0,
                  theta_inc=draw(st.integers(0, 6)), theta_decay=draw(st.integers(0, 3)),
                  theta_every=draw(st.integers(1, 3)),
                  offsets=draw(st.none() | st.lists(st.integers(0, min(top, 9)), min_size=n, max_size=n)))
    if rule == "rstdp":
        kw.update(elig_bits=draw(st.integers(3, 10)), elig_decay=draw(st.integers(1, 4)),
                  reward_shift=draw(st.integers(0, 3)))
    return Plasticity(**kw)


def _scalar_stream(net, samples, learn, rewards):
    layers = [ScalarLayer(layer) for layer in net.layers]
    outs = []
    for s, xs in enumerate(samples.tolist()):
        per_step = rewards is not None and np.ndim(rewards) == 2
        per_layer = []
        for sl in layers:
            xs = sl.run(xs, learn, rewards[s] if per_step else None)
            per_layer.append(xs)
        outs.append(per_layer)
        if rewards is not None and not per_step and learn:
            for sl in layers:
                sl.reward(rewards[s])
    return outs, layers


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=plastic_networks(), data=st.data())
def test_learner_matches_scalar_contract(net, data):
    N, T = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6))
    seed = data.draw(st.integers(0, 2**32 - 1))
    samples = np.random.default_rng(seed).random((N, T, net.n_inputs)) < data.draw(st.sampled_from([0.3, 0.7, 1.0]))
    learn = data.draw(st.booleans())
    reward_kind = data.draw(st.sampled_from(["none", "sample", "step"]))
    rewards = None
    if reward_kind == "sample":
        rewards = data.draw(st.lists(st.integers(-3, 3), min_size=N, max_size=N))
    elif reward_kind == "step":
        rewards = [data.draw(st.lists(st.integers(-3, 3), min_size=T, max_size=T)) for _ in range(N)]
    res = learn_stream(net, samples, learn, rewards)
    outs, scalar = _scalar_stream(net, samples, learn, rewards)
    for l, sl in enumerate(scalar):
        assert res.spikes[l].tolist() == [o[l] for o in outs]
        learned = res.network.layers[l]
        assert learned.weights.tolist() == sl.W
        if sl.p is not None:
            assert learned.plasticity.offsets_for(learned).tolist() == sl.off
            state = res.state[l]
            assert state.pre.tolist() == sl.P and state.post.tolist() == sl.Q
            if sl.p.rule == "rstdp":
                assert state.elig.tolist() == sl.E
    # The learned network with learning off: simulate (the fast path) agrees with the learner.
    frozen = learn_stream(res.network, samples, learn=False)
    fast = simulate(res.network, samples)
    for l in range(len(net.layers)):
        assert np.array_equal(fast.spikes[l], frozen.spikes[l])
