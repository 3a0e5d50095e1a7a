"""/prompt validation with the outcomes and error bodies of execution.validate_prompt (ComfyUI 0.3.64).

Only ancestors of output nodes are looked at, errors are reported on the node that has them and the
output they block, and exceptions (a link to a node that does not exist is a KeyError) become
`exception_during_validation` / `exception_during_inner_validation` entries, as in ComfyUI.
Tracebacks are the test host's own, so their text differs from a real ComfyUI's.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from .registry import INPUT_FILE_NODES, NodeRegistry

log = logging.getLogger("comfyui_studio.testhost")

Validated = dict[str, tuple[bool, list[dict[str, Any]], str]]
ValidationResult = tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]


def full_type_name(klass: type) -> str:
    if klass.__module__ == "builtins":
        return klass.__qualname__
    return f"{klass.__module__}.{klass.__qualname__}"


def types_compatible(received: Any, expected: Any) -> bool:
    """Linked output type vs input type: equal, or comma-separated unions that overlap."""
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want) or "*" in got or "*" in want


def _input_spec(class_inputs: dict[str, Any], name: str) -> tuple[Any, str, dict[str, Any]]:
    for category in ("required", "optional"):
        spec = class_inputs.get(category, {}).get(name)
        if spec is not None:
            extra = spec[1] if len(spec) > 1 else {}
            return spec[0], category, extra
    raise KeyError(name)


def _combo_choices(input_type: Any, extra: dict[str, Any]) -> list[Any] | None:
    if isinstance(input_type, list):
        return input_type
    if input_type == "COMBO" and isinstance(extra.get("options"), list):
        return extra["options"]
    return None


def _image_exists(registry: NodeRegistry, name: str) -> bool:
    for suffix, folder in (("[output]", "output"), ("[input]", "input"), ("[temp]", "temp")):
        if name.endswith(suffix):
            base = registry.input_dir.parent / folder
            return (base / name[: -len(suffix)].strip()).is_file()
    return (registry.input_dir / name).is_file()


async def validate_inputs(
    registry: NodeRegistry, prompt: dict[str, Any], unique_id: str, validated: Validated
) -> tuple[bool, list[dict[str, Any]], str]:
    if unique_id in validated:
        return validated[unique_id]

    inputs = prompt[unique_id]["inputs"]
    class_type = prompt[unique_id]["class_type"]
    class_inputs = registry.input_types(class_type)
    # LoadImage checks its file in VALIDATE_INPUTS, which switches off the combo-list check for it
    custom_checked = ["image"] if class_type in INPUT_FILE_NODES else []

    errors: list[dict[str, Any]] = []
    valid = True
    names = [*class_inputs.get("required", {}), *class_inputs.get("optional", {})]
    for x in names:
        input_type, category, extra = _input_spec(class_inputs, x)
        info = [input_type, extra]
        if x not in inputs:
            if category == "required":
                errors.append(
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": f"{x}",
                        "extra_info": {"input_name": x},
                    }
                )
            continue

        val = inputs[x]
        if isinstance(val, list):
            if len(val) != 2:
                errors.append(
                    {
                        "type": "bad_linked_input",
                        "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        "details": f"{x}",
                        "extra_info": {"input_name": x, "input_config": info, "received_value": val},
                    }
                )
                continue
            o_id = val[0]
            o_class_type = prompt[o_id]["class_type"]  # KeyError for a missing node, like ComfyUI
            received_type = registry.return_types(o_class_type)[val[1]]
            if not types_compatible(received_type, input_type):
                errors.append(
                    {
                        "type": "return_type_mismatch",
                        "message": "Return type mismatch between linked nodes",
                        "details": f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                        "extra_info": {
                            "input_name": x,
                            "input_config": info,
                            "received_type": received_type,
                            "linked_node": val,
                        },
                    }
                )
                continue
            try:
                r = await validate_inputs(registry, prompt, o_id, validated)
                if r[0] is False:
                    valid = False
                    continue
            except Exception as ex:
                valid = False
                validated[o_id] = (
                    False,
                    [
                        {
                            "type": "exception_during_inner_validation",
                            "message": "Exception when validating inner node",
                            "details": str(ex),
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "exception_message": str(ex),
                                "exception_type": full_type_name(type(ex)),
                                "traceback": traceback.format_tb(ex.__traceback__),
                                "linked_node": val,
                            },
                        }
                    ],
                    o_id,
                )
                continue
        else:
            try:
                # list widget values travel wrapped so they are not mistaken for links
                if isinstance(val, dict) and "__value__" in val:
                    val = val["__value__"]
                    inputs[x] = val
                converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
                    input_type if isinstance(input_type, str) else ""
                )
                if converter is not None:
                    val = converter(val)
                    inputs[x] = val
            except Exception as ex:
                errors.append(
                    {
                        "type": "invalid_input_type",
                        "message": f"Failed to convert an input value to a {input_type} value",
                        "details": f"{x}, {val}, {ex}",
                        "extra_info": {
                            "input_name": x,
                            "input_config": info,
                            "received_value": val,
                            "exception_message": str(ex),
                        },
                    }
                )
                continue

            if x in custom_checked:
                continue
            if "min" in extra and val < extra["min"]:
                errors.append(
                    {
                        "type": "value_smaller_than_min",
                        "message": "Value {} smaller than min of {}".format(val, extra["min"]),
                        "details": f"{x}",
                        "extra_info": {"input_name": x, "input_config": info, "received_value": val},
                    }
                )
                continue
            if "max" in extra and val > extra["max"]:
                errors.append(
                    {
                        "type": "value_bigger_than_max",
                        "message": "Value {} bigger than max of {}".format(val, extra["max"]),
                        "details": f"{x}",
                        "extra_info": {"input_name": x, "input_config": info, "received_value": val},
                    }
                )
                continue
            choices = _combo_choices(input_type, extra)
            if choices is not None and val not in choices:
                # ComfyUI leaves long lists (model folders) out of the error
                if len(choices) > 20:
                    list_info, config = f"(list of length {len(choices)})", None
                else:
                    list_info, config = str(choices), info
                errors.append(
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": f"{x}: '{val}' not in {list_info}",
                        "extra_info": {"input_name": x, "input_config": config, "received_value": val},
                    }
                )
                continue

    for x in custom_checked:
        val = inputs.get(x)
        if isinstance(val, str) and not _image_exists(registry, val):
            errors.append(
                {
                    "type": "custom_validation_failed",
                    "message": "Custom validation failed for node",
                    "details": f"{x} - Invalid image file: {val}",
                    "extra_info": {"input_name": x},
                }
            )

    ret = (False, errors, unique_id) if errors or not valid else (True, [], unique_id)
    validated[unique_id] = ret
    return ret


async def validate_prompt(
    registry: NodeRegistry,
    prompt_id: str,
    prompt: dict[str, Any],
    partial_execution_targets: list[str] | None,
) -> ValidationResult:
    """Same contract as execution.validate_prompt: (ok, error, outputs_to_execute, node_errors)."""
    outputs: list[str] = []
    for x in prompt:
        if "class_type" not in prompt[x]:
            return (
                False,
                {
                    "type": "invalid_prompt",
                    "message": "Cannot execute because a node is missing the class_type property.",
                    "details": f"Node ID '#{x}'",
                    "extra_info": {},
                },
                [],
                {},
            )
        class_type = prompt[x]["class_type"]
        if class_type not in registry:
            return (
                False,
                {
                    "type": "invalid_prompt",
                    "message": f"Cannot execute because node {class_type} does not exist.",
                    "details": f"Node ID '#{x}'",
                    "extra_info": {},
                },
                [],
                {},
            )
        if registry.is_output(class_type):
            if partial_execution_targets is None or x in partial_execution_targets:
                outputs.append(x)

    if not outputs:
        error = {
            "type": "prompt_no_outputs",
            "message": "Prompt has no outputs",
            "details": "",
            "extra_info": {},
        }
        return (False, error, [], {})

    good_outputs: list[str] = []
    failed: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    validated: Validated = {}
    for o in outputs:
        try:
            valid, reasons, _ = await validate_inputs(registry, prompt, o, validated)
        except Exception as ex:
            valid = False
            reasons = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": str(ex),
                    "extra_info": {
                        "exception_type": full_type_name(type(ex)),
                        "traceback": traceback.format_tb(ex.__traceback__),
                    },
                }
            ]
            validated[o] = (False, reasons, o)

        if valid is True:
            good_outputs.append(o)
            continue
        log.info("testhost: prompt output %s failed validation", o)
        failed.append((o, reasons))
        # nodes downstream of a bad node are invalid without errors of their own: not reported
        for node_id, (node_valid, node_reasons, _) in validated.items():
            if node_valid is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    }
                node_errors[node_id]["dependent_outputs"].append(o)

    if not good_outputs:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, reasons in failed for e in reasons)
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
        return (False, error, good_outputs, node_errors)
    return (True, None, good_outputs, node_errors)
