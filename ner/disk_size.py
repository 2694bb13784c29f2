"""How many bytes a checkpoint takes on disk, and never less: the estimate the free-space check
(ner/atomic.py check_room) asks for before a checkpoint is written, so a full disk is named
before the write and a checkpoint that fits is not refused. `saved_bytes`: a file of torch.save
(ner/checkpoint.py); `dcp_bytes`: a sharded checkpoint's DCP directory (ner/sharded_checkpoint.py).
The figures below were measured on torch 2.13 (tests/test_atomic.py holds the estimates to the
files' real sizes).
"""

from __future__ import annotations

import io
import pickle

import torch


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in a nested state dict, of a DTensor this rank's pieces."""
    return sum(t.nelement() * t.element_size() for t in _tensors(obj))


def _tensors(obj):
    """Every tensor of a nested state dict (of a DTensor, this rank's pieces)."""
    if isinstance(obj, torch.distributed.tensor.DTensor):
        obj = obj.to_local()
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _leaves(obj) -> int:
    """How many values (tensors or others) a nested state dict holds."""
    if isinstance(obj, dict):
        return sum(_leaves(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_leaves(v) for v in obj)
    return 1


def _without_tensors(obj):
    """The state with every tensor replaced by None: what torch.save pickles besides them."""
    if isinstance(obj, torch.Tensor):
        return None
    if isinstance(obj, dict):
        return {k: _without_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_without_tensors(v) for v in obj]
    return obj


# torch.save's zip archive around the tensors, measured (torch 2.13): 1,261 bytes for an empty
# dict; 250 to 330 bytes more per tensor, its key included (the storage's zip record and
# central-directory entry, their padding to 64-byte alignment, the tensor's reference in
# data.pkl). The two figures below are those, rounded up.
ARCHIVE_BYTES = 1536
TENSOR_RECORD_BYTES = 384
# DCP writes each item of a state (a tensor, or any other value) as a torch.save archive of its
# own (1,577 bytes measured for a one-element tensor, 1,261 for a number), and gives each a
# 250-byte entry in .metadata: 1,830 bytes an item, rounded up.
DCP_ITEM_BYTES = 2048


def saved_bytes(obj) -> int:
    """About the size of the file torch.save(obj) writes, and never less (the free-space check
    of ner/checkpoint.py): every storage whole (a view saves the storage it lies in), a record
    for each tensor, the pickle of everything else (the config, the log history), the archive's
    own records."""
    storages, tensors = {}, 0
    for t in _tensors(obj):
        storage = t.untyped_storage()
        storages[(t.device, storage.data_ptr())] = storage.nbytes()
        tensors += 1
    rest = _pickled_bytes(_without_tensors(obj))
    return sum(storages.values()) + TENSOR_RECORD_BYTES * tensors + rest + ARCHIVE_BYTES


def _pickled_bytes(obj) -> int:
    """The bytes of obj's pickle as torch.save's data.pkl holds it (protocol 2), with every
    reference to an object pickled before in its 5-byte form: in data.pkl the tensors before
    them push the later objects' memo indices past 255, where references cost 5 bytes, not 2
    (10,000 log entries: 120 KB more)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=2)
    taken = [object() for _ in range(256)]  # memo indices 0-255, which no object then gets
    pickler.memo = {id(x): (i, x) for i, x in enumerate(taken)}
    pickler.dump(obj)
    return len(out.getvalue())


def dcp_bytes(state: dict, world_size: int) -> int:
    """About the bytes DCP writes for `state` (this rank's) on `world_size` ranks, and never
    less: every rank's pieces as large as this rank's, each item's archive and metadata entry."""
    return world_size * (tensor_bytes(state) + DCP_ITEM_BYTES * _leaves(state))
