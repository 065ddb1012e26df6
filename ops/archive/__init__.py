"""Archive packages (电子档案): BagIt containers, their 四性检测, the packages the hub has written."""
