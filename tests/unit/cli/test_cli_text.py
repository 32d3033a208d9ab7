"""The plain-text output shared by both command lines."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from azrestore.cli.text import json_text

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()


@given(st.dictionaries(st.text(), SCALARS) | st.dictionaries(st.text(), st.lists(SCALARS)))
@example({"output": 'dir/"é\n.vhd', "blob_size": 4 * 1024**2 + 512, "seconds": 0.1})
@example({"nan": float("nan"), "inf": float("-inf")})
@example({})
def test_json_text_is_json_dumps_indented(data: dict[str, Any]) -> None:
    """The quick start's JSON writer for flat objects answers exactly as json does."""
    assert json_text(data) == json.dumps(data, indent=2)
