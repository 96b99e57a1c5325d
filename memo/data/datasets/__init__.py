"""Dataset components: one class per dataset, named by `_target_` in
memo/conf/dataset/<name>.yaml."""
