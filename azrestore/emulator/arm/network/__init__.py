"""Network (``Microsoft.Network``): virtual networks with subnets (also as child resources) and
network interfaces in a subnet, enough for azure-mgmt-network's client to build a helper
VM's network and for VMs to reference the NIC.

Modules: :mod:`.routes`, :mod:`.vnets`, :mod:`.subnets`, :mod:`.nics`, :mod:`.ip_allocation`
(private IPs as Azure allocates them), :mod:`.address_space` (prefixes and subnet ranges),
:mod:`.resources` (what the handlers share).
"""
