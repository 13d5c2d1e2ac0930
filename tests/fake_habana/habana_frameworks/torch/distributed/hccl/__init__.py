"""bridge v1.19.0 distributed/hccl/__init__.py: importing it runs _setup_module_id, which pins rank r to
module ID r, or to entry r of HABANA_VISIBLE_MODULES, unless HLS_MODULE_ID is set or there is one rank."""

import os

from habana_frameworks import EVENTS


def _setup_module_id(local_rank=-1, world_size=1):
    if "HLS_MODULE_ID" in os.environ:
        return
    if local_rank == -1 or world_size == 1:
        return
    if "HABANA_VISIBLE_MODULES" in os.environ:
        visible = os.environ["HABANA_VISIBLE_MODULES"].split(",")
        assert local_rank < len(visible), "There is not enough devices available for training."
        os.environ["HLS_MODULE_ID"] = visible[local_rank]
        return
    os.environ["HLS_MODULE_ID"] = str(local_rank)


EVENTS.append("hccl.import")
_setup_module_id(int(os.environ.get("LOCAL_RANK", -1)), int(os.environ.get("WORLD_SIZE", 1)))
