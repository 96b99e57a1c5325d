"""Dataset components: one class per dataset, named by `_target_` in conf/dataset/<name>.yaml."""
