"""The rubric's data section accepts exactly the catalog's data sets and safe folder names."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from grader.data import catalog
from grader.rubric import DataSpec


def test_rubric_names_the_catalog_data_sets():
    allowed = typing.get_args(DataSpec.model_fields["dataset"].annotation)
    assert set(allowed) == {"none", *catalog.CATALOG}


@pytest.mark.parametrize("dirname", ["data", "data/cifar10", "data/fashion"])
def test_relative_folders_are_accepted(dirname):
    assert DataSpec(dataset="cifar10", dirname=dirname, layout="files").dirname == dirname


@pytest.mark.parametrize("dirname", ["/data", "../data", "data/../../x", ""])
def test_folders_outside_the_run_are_refused(dirname):
    with pytest.raises(ValidationError):
        DataSpec(dirname=dirname)
