"""The stretches of free text that verification compares with raw input values (README "Verification").

A text cell is split at whitespace into tokens. A *span* is a run of 1 to `MAX_TOKENS`
consecutive tokens, joined by one space, with punctuation (`TRIM`) trimmed from both ends, of
`MIN_CHARS` to `MAX_CHARS` characters. A raw value is compared in the same normal form (its own
tokens joined by one space, trimmed: `normal_forms`), so a value is found inside a cell when its
tokens are a run of the cell's tokens: `Call Dr. Ann Lee-Smith, today` holds `Ann Lee-Smith`
and `Lee-Smith`, but not `Smith` (glued to `Lee-` inside a token), nor `ann lee-smith` (case
counts), nor a value longer than `MAX_TOKENS` tokens or `MAX_CHARS` characters.

Pure Arrow and numpy over a batch of distinct cells: the spans are Arrow strings handed to the
hasher, never anything else.
"""

import string

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MIN_CHARS = 6  # shorter raw values are not looked for inside text: too many are common words
MAX_TOKENS = 6  # an address, a full name, a phone or card number in groups: up to 6 words
MAX_CHARS = 100  # longer stretches of text are not compared
TRIM = string.punctuation + " " + "“”‘’«»„‚‹›–—…·•¡¿"  # quotes, dashes


def _fits(texts: pa.Array) -> pa.Array:
    length = pc.utf8_length(texts)
    return pc.and_(pc.greater_equal(length, MIN_CHARS), pc.less_equal(length, MAX_CHARS))


def spans(cells: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The spans of `cells` (strings, no nulls), and for each the position of the cell it is in.

    A span starts and ends at a token holding a character outside `TRIM` (a dash between two words
    is inside spans, never their end); equal spans of one cell are repeated, not merged.
    """
    lists = pc.utf8_split_whitespace(cells)
    tokens = lists.flatten()
    count = len(tokens)
    if not count:
        return pa.array([], cells.type), np.zeros(0, np.int64)
    owner = pc.list_parent_indices(lists).to_numpy()
    core = pc.utf8_trim(tokens, TRIM)
    wordy = pc.greater(pc.utf8_length(core), 0).to_numpy(zero_copy_only=False)
    lead, tail = pc.utf8_ltrim(tokens, TRIM), pc.utf8_rtrim(tokens, TRIM)
    found, owners = [], []
    for width in range(1, min(MAX_TOKENS, count) + 1):
        first = np.arange(count - width + 1)
        same = owner[first] == owner[first + width - 1]
        if not same.any():  # no cell has this many tokens
            break
        first = first[same & wordy[first] & wordy[first + width - 1]]
        if not len(first):
            continue
        taken = pa.array(first)
        if width == 1:
            text = core.take(taken)
        else:
            middle = [tokens.take(pa.array(first + k)) for k in range(1, width - 1)]
            text = pc.binary_join_element_wise(lead.take(taken), *middle, tail.take(pa.array(first + width - 1)), " ")
        fit = _fits(text)
        found.append(text.filter(fit))
        owners.append(owner[first][fit.to_numpy(zero_copy_only=False)])
    if not found:
        return pa.array([], cells.type), np.zeros(0, np.int64)
    return pa.concat_arrays(found), np.concatenate(owners).astype(np.int64)


def is_span(cells: pa.Array) -> pa.Array:
    """Whether each of `cells` (strings, no nulls) is one of its own spans: in normal form, of at most
    `MAX_TOKENS` tokens and `MIN_CHARS` to `MAX_CHARS` characters."""
    short = pc.less(pc.count_substring(cells, " "), MAX_TOKENS)
    return pc.and_(pc.and_(pc.equal(_normal(cells), cells), short), _fits(cells))


def _normal(values: pa.Array) -> pa.Array:
    return pc.utf8_trim(pc.binary_join(pc.utf8_split_whitespace(values), " "), TRIM)


def normal_forms(values: pa.Array) -> pa.Array:
    """The normal forms (tokens joined by one space, `TRIM` trimmed) of those `values` (strings, no
    nulls) that differ from theirs and could be a span: what a span is compared with besides the
    values themselves."""
    normal = _normal(values)
    return normal.filter(pc.and_(pc.not_equal(normal, values), _fits(normal)))
