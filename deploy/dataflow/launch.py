"""The Flex Template launcher's Python file (FLEX_TEMPLATE_PYTHON_PY_FILE): veil's entry point."""

from veil.pipelines.flex_template import main

if __name__ == "__main__":
    main()
