#!/usr/bin/env python3
"""Renders every conversation of tests/fixtures/templates/cases.json with every template there, the
way transformers' apply_chat_template does, and writes the expected outputs (or the error raised) as
JSON for tests/test_template_fixtures.c.

On the GPU machine (transformers installed) it uses transformers' own compiled-template path
(render_jinja_template, or _compile_jinja_template where that is missing). Elsewhere, with --engine
jinja2, it rebuilds transformers' environment with jinja2 alone (for checking before a device run).

    python3 scripts/gen_template_fixtures.py --out tests/fixtures/templates/expected.json
"""
import argparse
import json
import os
import sys
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "templates")


def jinja2_renderer():
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)

    def render(template, messages, tools, add_generation_prompt, kwargs):
        return env.from_string(template).render(messages=messages, tools=tools, documents=None,
                                                add_generation_prompt=add_generation_prompt, **kwargs)

    return render, {"engine": "jinja2 " + jinja2.__version__}


def transformers_renderer():
    import jinja2
    import transformers
    from transformers.utils import chat_template_utils as ctu

    versions = {"engine": "transformers", "transformers": transformers.__version__, "jinja2": jinja2.__version__}
    if hasattr(ctu, "render_jinja_template"):
        def render(template, messages, tools, add_generation_prompt, kwargs):
            rendered, _ = ctu.render_jinja_template(conversations=[messages], tools=tools, documents=None,
                                                    chat_template=template,
                                                    add_generation_prompt=add_generation_prompt, **kwargs)
            return rendered[0]
        versions["path"] = "transformers.utils.chat_template_utils.render_jinja_template"
    else:
        def render(template, messages, tools, add_generation_prompt, kwargs):
            compiled = ctu._compile_jinja_template(template)
            return compiled.render(messages=messages, tools=tools, documents=None,
                                   add_generation_prompt=add_generation_prompt, **kwargs)
        versions["path"] = "transformers.utils.chat_template_utils._compile_jinja_template"
    return render, versions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["transformers", "jinja2"], default="transformers")
    ap.add_argument("--out", default=os.path.join(FIXTURES, "expected.json"))
    ap.add_argument("--fixtures", default=FIXTURES, help="folder with cases.json and the .jinja files")
    args = ap.parse_args()
    render, versions = transformers_renderer() if args.engine == "transformers" else jinja2_renderer()
    spec = json.load(open(os.path.join(args.fixtures, "cases.json"), encoding="utf-8"))
    results = {}
    for name, tokens in spec["templates"].items():
        template = open(os.path.join(args.fixtures, name + ".jinja"), encoding="utf-8").read()
        per_case = []
        for case in spec["cases"]:
            kwargs = {k: v for k, v in tokens.items() if v is not None}
            kwargs.update(case.get("extra", {}))
            try:
                out = render(template, case["messages"], case.get("tools"), case["add_generation_prompt"], kwargs)
                per_case.append({"case": case["name"], "output": out})
            except Exception as e:  # the template refuses this conversation: our renderer must fail too
                per_case.append({"case": case["name"], "error": f"{type(e).__name__}: {e}"})
        ok = sum("output" in r for r in per_case)
        print(f"{name}: {ok} rendered, {len(per_case) - ok} raised", file=sys.stderr)
        results[name] = per_case
    # strftime_now("%d %B %Y") as rendered today (SmolLM3 prints it); the test substitutes its own day
    json.dump({"generated_by": versions, "python": sys.version.split()[0], "today": datetime.now().strftime("%d %B %Y"),
               "results": results},
              open(args.out, "w", encoding="utf-8"), ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
