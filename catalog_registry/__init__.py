"""Data-resource catalogue (政务数据资源目录): entries, versions, distributions, search, demands."""
