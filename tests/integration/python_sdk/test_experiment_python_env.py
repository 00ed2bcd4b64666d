"""An environment profile with pip dependencies, used by an experiment on a real local stack:
the profile is created with the SDK, the experiment names it, and its task imports the package
from the virtualenv the local cluster built. pip's source is the ``PIP_FIND_LINKS`` of the
environment ``submarine local up`` ran in (a directory holding a wheel this test builds: there
is no index here). The local cluster says what it did not honour (the profile's image).

Needs ``SUBMARINE_BIN_DIR`` and ``PYTHONPATH`` (set by the ctest registration).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unittest

from sdk_test_support import LocalStack

_MAKE_WHEEL = os.path.join(os.path.dirname(__file__), "..", "..", "support", "make_wheel.py")


class ExperimentPythonEnvTest(unittest.TestCase):
    stack = None
    wheels = ""

    @classmethod
    def setUpClass(cls) -> None:
        cls.wheels = tempfile.mkdtemp(prefix="submarine-wheels-", dir="/tmp")
        subprocess.run(["/usr/bin/python3", _MAKE_WHEEL, cls.wheels, "sdk_tiny", "2.0",
                        "VALUE = 'from the profile'"], check=True, stdout=subprocess.DEVNULL)
        cls.stack = LocalStack(env={"PIP_FIND_LINKS": cls.wheels})
        cls.client = cls.stack.client

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.stack is not None:
            cls.stack.close()
        shutil.rmtree(cls.wheels, ignore_errors=True)

    def test_a_profiles_pip_dependencies_are_importable_in_the_task(self) -> None:
        self.client.environments.create(
            "tiny", image="python:3.11", kernel_spec={"pip_dependencies": ["sdk-tiny==2.0"]})
        created = self.client.experiments.create({
            "meta": {"name": "uses-tiny",
                     "cmd": "python -c 'import sdk_tiny; print(sdk_tiny.VALUE)'"},
            "environment": {"name": "tiny"},
            "spec": {"Worker": {"replicas": 1}}})
        done = self.client.experiments.wait(created.name, timeout=120)
        log = self.client.experiments.logs(created.name)
        self.assertEqual(done.state, "SUCCEEDED", f"{done.state_reason}\n{log}")
        self.assertIn("from the profile\n", log)
        resolved = done.reproducibility["resolvedSpec"]["environment"]
        self.assertEqual(resolved["pipDependencies"], ["sdk-tiny==2.0"])
        self.assertEqual(done.warnings,
                         ["image python:3.11 is not used on the local cluster: "
                          "tasks run on the host"])

    def test_a_dependency_that_is_an_option_is_refused_naming_the_field(self) -> None:
        from submarine import InvalidArgument

        with self.assertRaises(InvalidArgument) as raised:
            self.client.experiments.create({
                "meta": {"cmd": "true"},
                "environment": {"pipDependencies": ["--extra-index-url=http://x/"]},
                "spec": {"Worker": {"replicas": 1}}})
        self.assertIn("environment.pip_dependencies[0]", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
