"""The dashboard's page files: thin views registered by path in ``dashboard/app.py`` (``st.navigation``).

Each page reads its widgets, calls ``dashboard`` functions and draws; it imports only the ``dashboard``
package (import contract in pyproject.toml).  This file makes the folder a package for the import linter;
Streamlit runs the page files by path, never as ``pages.X`` modules.
"""
