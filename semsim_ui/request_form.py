"""Form widgets made from a training request dataclass: one widget per field, with its label, help,
limits and default taken from the field (semsim.training.spec), so the page and the CLI agree."""

from __future__ import annotations

from typing import Any

import streamlit as st

from semsim.training.spec import FieldSpec, form_fields

_UNSET = object()


def _lowest(spec: FieldSpec) -> float | None:
    if spec.low is None:
        return None
    if not spec.low_open:
        return spec.low
    return spec.low + (1 if spec.kind is int else (spec.step or 1e-7) / 10)


def _highest(spec: FieldSpec) -> float | None:
    if spec.high is None:
        return None
    if not spec.high_open:
        return spec.high
    return spec.high - (1 if spec.kind is int else (spec.step or 1e-7) / 10)


def field_widget(spec: FieldSpec, key: str, default: Any = _UNSET, disabled: bool = False,
                 container: Any = st) -> Any:
    """Draw the widget for one field; returns the field's value."""
    value = spec.default if default is _UNSET else default
    label, help_text = spec.label, spec.help or None
    if spec.toggle is not None:
        ticked = container.checkbox(label, value=value == spec.toggle, key=key, help=help_text, disabled=disabled)
        return spec.toggle if ticked and not disabled else None
    if spec.kind is bool:
        return container.checkbox(label, value=bool(value), key=key, help=help_text, disabled=disabled)
    if spec.repeat:  # a repeatable option (--part A --part B): one value a line
        text = container.text_area(label, value="\n".join(value or ()), key=key, help=help_text, disabled=disabled,
                                   height=80)
        return tuple(line.strip() for line in text.splitlines() if line.strip())
    if spec.choices:
        return container.selectbox(label, spec.choices, index=list(spec.choices).index(value), key=key,
                                   help=help_text, disabled=disabled,
                                   format_func=lambda c: f"{c}: {spec.choice_help[c]}" if c in spec.choice_help
                                   else str(c))
    if spec.kind in (int, float):
        cast = spec.kind
        low, high = _lowest(spec), _highest(spec)
        # An optional count ("not set" = no cap, all rows) shows as 0: a number box cannot be emptied
        # once it holds a number, and 0 is never a valid count here.
        zero_is_unset = spec.optional and spec.kind is int and low is not None and low >= 1
        if zero_is_unset:
            low, value = 0, 0 if value is None else value
            help_text = f"{help_text or ''} 0: not set.".strip()
        options: dict[str, Any] = {"min_value": None if low is None else cast(low),
                                   "max_value": None if high is None else cast(high),
                                   "value": None if value is None else cast(value), "key": key, "help": help_text,
                                   "disabled": disabled}
        if spec.step is not None:
            options["step"] = cast(spec.step)
        if spec.fmt:
            options["format"] = spec.fmt
        number = container.number_input(label, **options)
        return None if zero_is_unset and not number else number
    return container.text_input(label, value=value or "", key=key, help=help_text, disabled=disabled)


def request_fields(request: type, prefix: str, group: str, defaults: dict[str, Any] | None = None,
                   disabled: set[str] | frozenset[str] = frozenset(), columns: int = 1,
                   skip: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Widgets for every form field of `request` in `group`, keyed `<prefix>.<field>`; returns the values.

    `defaults` overrides a field's default on this page (say, a step cap on a CPU), `columns` lays the
    widgets out in that many columns, `skip` leaves fields out (the page offers them its own way)."""
    defaults = defaults or {}
    specs = [spec for spec in form_fields(request, group) if spec.name not in skip]
    slots = st.columns(columns) if columns > 1 else [st]
    values = {}
    for i, spec in enumerate(specs):
        values[spec.name] = field_widget(spec, f"{prefix}.{spec.name}", defaults.get(spec.name, _UNSET),
                                         spec.name in disabled, slots[i % len(slots)])
    return values
