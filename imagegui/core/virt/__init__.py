"""What libvirt knows about the images: which VMs (domains) use them, running or shut off, and
the storage pools' volumes, on this host or another one reached through libvirt's remote driver.

libvirt-python is an optional extra (``pip install imagegui[libvirt]``). Nothing here imports it
at module level: without it, without a daemon or without permission, :mod:`connect` says why in
one sentence and every other part of imagegui works as before.
"""
