"""etcd for netlab: a small v3 client over etcd's JSON gateway (`client`) and etcd members run as
lab-owned processes (`members`). The store on etcd is netlab/store/etcd.py; flannel's leases in etcd
are netlab/flannel/."""
