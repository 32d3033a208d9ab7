"""Virtual machines (``Microsoft.Compute/virtualMachines``): create from an attached OS disk
or a marketplace image, update (attach and detach data disks, resize, swap the OS disk while
deallocated), get (with ``$expand=instanceView``), instance view, start, powerOff,
deallocate, restart, delete and run commands.

Modules: :mod:`.routes` (routing, read, delete), :mod:`.validation` (a VM body, checked),
:mod:`.os_disk` and :mod:`.attachments` (the disks and NICs a body names), :mod:`.create`,
:mod:`.update`, :mod:`.power` (the power state machine), :mod:`.agent` (the guest agent),
:mod:`.instance_view`, :mod:`.run_command`, :mod:`.representation` (the VM as ARM answers it).
"""
