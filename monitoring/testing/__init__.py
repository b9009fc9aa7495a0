"""Test helpers shipped with the apps, for this project's tests and a host project's.

``plugin``: the pytest plugin (pytest-django fixtures), loaded through the
``pytest11`` entry point; ``factories``: model-bakery recipes and the functions
the fixtures build on (pairs in sync, desyncs injected behind the hook).
Needs the ``testing`` extra (pytest-django, model-bakery).
"""
