"""The two steps of Double-Batch K-SVD (Valentin et al.), as plain tensor functions.

Sparse coding is matching pursuit with DᵀD and DᵀY precomputed: each iteration is an arg max over the
stored correlations, a gather and one row update from DᵀD, never a matrix-vector product with D, and
runs for all members and samples at once. The dictionary update replaces each atom by the top left
singular vector of its restricted error matrix, for a batch of atoms at a time against the same
residual, by a few power iterations (on the d × d Gram matrix when the error matrix is wide).

Shapes: E members, B samples, m atoms, d width, k atoms per sample. Dictionaries are [m, d] with
atoms as rows (the sae_lab convention); the paper's D is its transpose.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Matching pursuit may pick an atom it already holds (that only changes the coefficient); a sample
# stops before it would take a (k+1)-th distinct atom, or after this many picks per allowed atom.
MP_ITER_FACTOR = 2
# Matching pursuit finds arg max |c| block by block (see argmax_abs); rows are padded to whole blocks.
BLOCK = 32
# Padded error matrices of one group of atoms hold at most this many floats (256 MB in float32).
UPDATE_FLOATS = 1 << 26
PAD_SLACK = 0.75


def argmax_abs(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(arg max_j |c_j|, c at it) over the last axis, whose length is a multiple of BLOCK. torch's arg max
    along a row is ~20× slower on CPU than its max without indices, so: the block of the largest |c| from
    the blocks' max and min, then the arg max inside that block only. Ties go to the first index, as
    `c.abs().argmax(-1)`."""
    lead, m = c.shape[:-1], c.shape[-1]
    blocks = c.view(*lead, m // BLOCK, BLOCK)
    best = torch.maximum(blocks.amax(-1), blocks.amin(-1).neg_()).argmax(-1)
    inside = blocks.gather(-2, best[..., None, None].expand(*lead, 1, BLOCK))[..., 0, :]
    at = inside.abs().argmax(-1)
    return best * BLOCK + at, inside.gather(-1, at[..., None])[..., 0]


@torch.no_grad()
def matching_pursuit(gram: torch.Tensor, corr: torch.Tensor, k: int, max_iters: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (values, indices), each [E, B, k], from DᵀD `gram` [E, m, m] and DᵀY `corr` [E, B, m].

    Each pick: j = arg max |⟨r, d_j⟩| read from the stored correlations, coefficient += ⟨r, d_j⟩, and
    the correlations of the new residual by the recurrence Dᵀr ← Dᵀr − ⟨r, d_j⟩ DᵀD_j. Unfilled slots
    hold value 0 (index 0), so sums over slots (decoding, counting non-zeros) need no mask."""
    n_members, batch, m = corr.shape
    width = -(-m // BLOCK) * BLOCK  # zero columns up to a whole block: never larger than a real |c|
    c = corr.new_zeros(n_members, batch, width)
    c[..., :m] = corr
    rows = gram.new_zeros(n_members * m, width)
    rows[:, :m] = gram.reshape(n_members * m, m)
    picked = torch.empty(n_members * batch, width, dtype=corr.dtype, device=corr.device)
    values = torch.zeros(n_members, batch, k, dtype=corr.dtype, device=corr.device)
    indices = torch.zeros(n_members, batch, k, dtype=torch.long, device=corr.device)
    count = torch.zeros(n_members, batch, dtype=torch.long, device=corr.device)
    active = torch.ones(n_members, batch, dtype=torch.bool, device=corr.device)
    slots = torch.arange(k, device=corr.device)
    offsets = (torch.arange(n_members, device=corr.device) * m)[:, None]
    for _ in range(max_iters if max_iters is not None else MP_ITER_FACTOR * k):
        j, a = argmax_abs(c)
        j = j.clamp_(max=m - 1)  # a padding column wins only when every |c| is 0, and then a = 0
        match = (indices == j[..., None]) & (slots < count[..., None])  # [E, B, k]
        seen = match.any(-1)
        active &= seen | (count < k)
        if not bool(active.any()):  # every sample would take a (k+1)-th atom: done
            break
        a = a * active
        new = active & ~seen
        slot = torch.where(seen, match.to(torch.uint8).argmax(-1), count.clamp(max=k - 1))[..., None]
        values.scatter_add_(-1, slot, a[..., None])
        indices.scatter_(-1, slot, torch.where(new, j, indices.gather(-1, slot)[..., 0])[..., None])
        count += new
        # index_select into a kept buffer: ~7× faster on CPU than rows[j] (which allocates and copies)
        torch.index_select(rows, 0, (j + offsets).reshape(-1), out=picked)
        c.addcmul_(picked.view(n_members, batch, width), a[..., None], value=-1.0)
    return values, indices


def decode_codes(values: torch.Tensor, indices: torch.Tensor, dictionary: torch.Tensor) -> torch.Tensor:
    """Σ_slots value · atom: [B, k] codes and a [m, d] dictionary -> [B, d] (no [B, k, d] gather)."""
    return F.embedding_bag(indices, dictionary, per_sample_weights=values, mode="sum")


@torch.no_grad()
def top_left_singular(err: torch.Tensor, init: torch.Tensor, iters: int) -> torch.Tensor:
    """Top left singular vector [c, d] of each error matrix E_j = err[j]ᵀ (d × P; the P rows of err[j]
    are its columns, zero rows are padding), by `iters` power iterations from `init` [c, d].

    Wide (P > d): on the d × d Gram E Eᵀ = errᵀ err, whose cost no longer grows with P; otherwise on
    u ← Eᵀ(E u) directly. Power iteration keeps the sign of init's component along the answer, so an
    atom does not flip sign from one update to the next."""
    u = init
    if err.shape[1] > err.shape[2]:
        gram = torch.bmm(err.transpose(1, 2), err)
        step = lambda v: torch.bmm(gram, v[..., None])[..., 0]  # noqa: E731
    else:
        step = lambda v: torch.bmm(err.transpose(1, 2), torch.bmm(err, v[..., None]))[..., 0]  # noqa: E731
    for _ in range(iters):
        v = step(u)
        norm = v.norm(dim=-1, keepdim=True)
        u = torch.where(norm > 0, v / norm.clamp_min(1e-30), u)  # an all-zero error matrix keeps the atom
    return u


def _groups_by_size(counts: list[int], d: int) -> list[list[int]]:
    """Positions of used atoms cut into groups whose padded error matrices fit UPDATE_FLOATS, largest counts
    first, each atom within PAD_SLACK of its group's largest count: padding then wastes little memory and
    few flops (the Gram form costs width · d² per atom, padded columns included)."""
    order = sorted((i for i in range(len(counts)) if counts[i]), key=lambda i: -counts[i])
    groups: list[list[int]] = []
    for i in order:
        width = counts[groups[-1][0]] if groups else 0
        if groups and counts[i] >= PAD_SLACK * width and (len(groups[-1]) + 1) * width * d <= UPDATE_FLOATS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@torch.no_grad()
def update_dictionary(dictionary: torch.Tensor, y: torch.Tensor, values: torch.Tensor, indices: torch.Tensor,
                      order: torch.Tensor, atom_batch: int, power_iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One member's K-SVD dictionary update, in place on `dictionary` [m, d]; returns (the residual
    Y − D X [B, d] after the update, the atoms no sample used [m] bool).

    Atoms are taken in `order` (a permutation) in batches of `atom_batch`; every atom of a batch is
    updated against the same residual (the "double batch": one batch of samples, batches of atoms),
    then the residual and the coefficients of the batch are updated before the next batch. Each atom
    becomes the top left singular vector u of E_j = Y_Ωj − D X_Ωj + d_j X_j,Ωj and its coefficients
    uᵀ E_j (singular value times right vector), as in K-SVD."""
    batch, k = values.shape
    m, d = dictionary.shape
    residual = y - decode_codes(values, indices, dictionary)
    flat_values, flat_atoms = values.reshape(-1), indices.reshape(-1)
    used = (flat_values != 0).nonzero()[:, 0]
    # Entries (sample, atom, value) sorted by the atom's place in `order`: each batch of atoms is then one
    # contiguous slice, grouped by atom, with no search per batch.
    place = torch.empty(m, dtype=torch.long, device=y.device)
    place[order] = torch.arange(m, device=y.device)
    used = used[place[flat_atoms[used]].argsort(stable=True)]
    atoms_all, samples_all, x_all = flat_atoms[used], used // k, flat_values[used]
    per_atom = torch.bincount(place[atoms_all], minlength=m)
    bounds = [0] + torch.cumsum(per_atom, 0)[atom_batch - 1::atom_batch].tolist()
    bounds += [len(used)] if len(bounds) <= (m - 1) // atom_batch + 1 else []
    for b, atoms in enumerate(order.split(atom_batch)):
        lo, hi = bounds[b], bounds[b + 1]
        if hi == lo:
            continue
        atom, sample, x_old = atoms_all[lo:hi], samples_all[lo:hi], x_all[lo:hi]
        pos = place[atom] - b * atom_batch
        counts = per_atom[b * atom_batch:b * atom_batch + len(atoms)]
        rank = torch.arange(hi - lo, device=y.device) - (torch.cumsum(counts, 0) - counts)[pos]
        # index_select rather than t[idx]: the same gather, several times faster on CPU
        old_rows = dictionary.index_select(0, atom)
        cols = residual.index_select(0, sample).addcmul_(x_old[:, None], old_rows)  # the columns of each E_j
        new_atoms, x_new = dictionary[atoms].clone(), torch.empty_like(x_old)
        for group in _groups_by_size(counts.tolist(), d):
            group_t = torch.tensor(group, device=y.device)
            width = int(counts[group[0]])
            slot = torch.full((len(atoms),), -1, dtype=torch.long, device=y.device)
            slot[group_t] = torch.arange(len(group), device=y.device)
            flat = slot[pos] * width + rank
            mine = (slot[pos] >= 0).nonzero()[:, 0] if len(group) < int((counts > 0).sum()) else None
            padded = y.new_zeros(len(group) * width, d)
            padded.index_copy_(0, flat if mine is None else flat[mine], cols if mine is None else cols[mine])
            padded = padded.view(len(group), width, d)
            u = top_left_singular(padded, new_atoms[group_t], power_iters)
            new_atoms[group_t] = u
            proj = torch.bmm(padded, u[..., None]).reshape(-1)
            if mine is None:
                x_new = proj.index_select(0, flat)
            else:
                x_new[mine] = proj[flat[mine]]
        delta = new_atoms.index_select(0, pos).mul_(x_new[:, None]).sub_(old_rows.mul_(x_old[:, None]))
        residual.index_add_(0, sample, delta, alpha=-1.0)
        x_all[lo:hi] = x_new
        dictionary[atoms] = new_atoms
    unused = per_atom[place] == 0
    return residual, unused


@torch.no_grad()
def reinit_unused(dictionary: torch.Tensor, residual: torch.Tensor, unused: torch.Tensor,
                  generator: torch.Generator) -> int:
    """Point unused atoms at the worst-reconstructed samples (largest residual norm, one sample each), or at
    fresh U(−½, ½) directions when there are fewer samples than unused atoms; returns how many."""
    idx = unused.nonzero()[:, 0]
    n = len(idx)
    if n == 0:
        return 0
    worst = residual.norm(dim=-1).topk(min(n, len(residual))).indices
    fresh = torch.rand(n, dictionary.shape[1], generator=generator).to(dictionary) - 0.5
    fresh[:len(worst)] = residual[worst]
    norms = fresh.norm(dim=-1, keepdim=True)
    fresh = torch.where(norms > 1e-12, fresh / norms.clamp_min(1e-12), dictionary[idx])
    dictionary[idx] = fresh
    return n
