"""Stand-in DescribeInstanceTypes entries for instance types moto 5.2 lacks.

From the published EC2 specifications. Used offline only (plan, tests, sandbox), and only
for types the EC2 endpoint (moto) cannot describe: pcluster's own hook for that,
``Ec2Client.additional_instance_types_data``, receives them. Standalone (pcluster venv).
"""

from __future__ import annotations

from typing import Any

STANDIN_INSTANCE_TYPES: dict[str, dict[str, Any]] = {
    "p3.2xlarge": {
        "InstanceType": "p3.2xlarge",
        "CurrentGeneration": True,
        "FreeTierEligible": False,
        "SupportedUsageClasses": ["on-demand", "spot"],
        "SupportedRootDeviceTypes": ["ebs"],
        "SupportedVirtualizationTypes": ["hvm"],
        "BareMetal": False,
        "Hypervisor": "xen",
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"], "SustainedClockSpeedInGhz": 2.3},
        "VCpuInfo": {
            "DefaultVCpus": 8,
            "DefaultCores": 4,
            "DefaultThreadsPerCore": 2,
            "ValidCores": [1, 2, 3, 4],
            "ValidThreadsPerCore": [1, 2],
        },
        "MemoryInfo": {"SizeInMiB": 62464},
        "InstanceStorageSupported": False,
        "EbsInfo": {
            "EbsOptimizedSupport": "default",
            "EncryptionSupport": "supported",
            "NvmeSupport": "unsupported",
        },
        "NetworkInfo": {
            "NetworkPerformance": "Up to 10 Gigabit",
            "MaximumNetworkInterfaces": 4,
            "MaximumNetworkCards": 1,
            "DefaultNetworkCardIndex": 0,
            "NetworkCards": [
                {
                    "NetworkCardIndex": 0,
                    "NetworkPerformance": "Up to 10 Gigabit",
                    "MaximumNetworkInterfaces": 4,
                }
            ],
            "Ipv4AddressesPerInterface": 15,
            "Ipv6AddressesPerInterface": 15,
            "Ipv6Supported": True,
            "EnaSupport": "supported",
            "EfaSupported": False,
        },
        "GpuInfo": {
            "Gpus": [
                {
                    "Name": "V100",
                    "Manufacturer": "NVIDIA",
                    "Count": 1,
                    "MemoryInfo": {"SizeInMiB": 16384},
                }
            ],
            "TotalGpuMemoryInMiB": 16384,
        },
        "PlacementGroupInfo": {"SupportedStrategies": ["cluster", "partition", "spread"]},
        "HibernationSupported": False,
        "BurstablePerformanceSupported": False,
        "DedicatedHostsSupported": True,
        "AutoRecoverySupported": True,
        "SupportedBootModes": ["legacy-bios"],
    }
}
