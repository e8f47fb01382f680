"""Loaded by the e2e test's `invoke` subprocesses (PYTHONPATH): append each AWS API call the
process makes to the file named by PWBCLUSTER_TEST_CALLS, as "<signing name>:<operation>
<where> <python>", so the test can check the deployer policy allows every one of them.
<where> is "sandbox-only" for a call made by code a real run never executes (the sandbox's
inventory of what moto holds, its stand-in AMIs), "run" otherwise."""

import os
import sys

_target = os.environ.get("PWBCLUSTER_TEST_CALLS")
_SANDBOX_ONLY = ("pwbcluster/sandbox/inventory.py", "pwbcluster/sandbox/image_standins.py")

if _target:
    try:
        from botocore.client import BaseClient
    except ImportError:  # a Python without botocore: nothing to record
        pass
    else:
        _original = BaseClient._make_api_call

        def _recording(self, operation_name, api_params):  # type: ignore[no-untyped-def]
            name = self.meta.service_model.signing_name
            where = "run"
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_code.co_filename.endswith(_SANDBOX_ONLY):
                    where = "sandbox-only"
                    break
                frame = frame.f_back
            with open(_target, "a", encoding="utf-8") as out:
                out.write(f"{name}:{operation_name} {where} {sys.executable}\n")
            return _original(self, operation_name, api_params)

        BaseClient._make_api_call = _recording  # type: ignore[method-assign]
