"""Calibration data passed in memory: texts, one token stream, token rows; anything else is one clear line."""

import pytest
import torch

from crepe.data.memory import memory_data, memory_windows
from crepe.data.windows import calibration_windows


class _Tokenizer:
    bos_token_id = 0


def test_a_token_stream_is_drawn_from_as_a_corpus_is_and_a_list_of_ints_is_the_same_stream():
    stream = torch.arange(1, 500)
    expected = calibration_windows(stream, 4, 16, seed=3)
    for data in (stream, stream.tolist()):
        assert torch.equal(memory_windows(memory_data(data), _Tokenizer(), 4, 16, seed=3), expected)


def test_token_rows_are_used_as_given_cut_to_seqlen_and_too_few_or_short_rows_are_refused():
    rows = [list(range(i, i + 20)) for i in range(6)]
    windows = memory_windows(memory_data(rows), _Tokenizer(), 4, 16, seed=0)
    assert torch.equal(windows, torch.tensor([r[:16] for r in rows[:4]]))
    for nsamples, seqlen in ((7, 16), (4, 21)):
        with pytest.raises(ValueError, match=f"need {nsamples} rows of at least {seqlen} tokens"):
            memory_windows(memory_data(rows), _Tokenizer(), nsamples, seqlen, seed=0)


def test_a_dataset_needs_one_split_and_a_text_or_input_ids_column():
    datasets = pytest.importorskip("datasets")
    split = datasets.Dataset.from_dict({"body": ["a", "b"]})
    with pytest.raises(ValueError, match=r"pass one, e.g. dataset=data\['train'\]"):
        memory_data(datasets.DatasetDict({"train": split}))
    with pytest.raises(ValueError, match=r"needs a 'text' or 'input_ids' column; it has \['body'\]"):
        memory_data(split)
    both = memory_data(datasets.Dataset.from_dict({"text": ["x"], "input_ids": [[1, 2, 3]]}))
    assert both.kind == "rows" and both.description.startswith("memory:datasets.Dataset of 1 rows, input_ids")
