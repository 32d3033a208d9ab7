"""The only layer that imports azure.* or speaks HTTP to Azure. Foreign errors (aiohttp,
azure-core) are translated here, once, into :mod:`azrestore.errors`."""
