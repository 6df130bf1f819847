"""mmdet's ``DetInferencer`` that also exports the per-box values mmext's heads predict.

mmdet's :meth:`DetInferencer.pred2dict` keeps only labels, scores, boxes and masks, so the
predictions it returns (``return_datasamples=False``) and the JSON files it saves drop Gaussian
YOLOv3's ``bbox_uncertainty`` and ``bbox_std``. This subclass is a drop-in replacement -- same
name, arguments and outputs, plus those fields where a prediction has them (and it saves the
predictions of ndarray inputs, where mmdet's fails on their missing path)::

    from mmext.apis import DetInferencer            # instead of mmdet.apis
    inferencer = DetInferencer(CONFIG, CHECKPOINT, device='cpu')
    result = inferencer('demo.jpg', out_dir='outputs/', no_save_pred=False)
    result['predictions'][0]['bbox_uncertainty']     # (N, 4) lists, also in outputs/preds/*.json

Drawing is the visualiser's (the config's ``visualizer``; Gaussian YOLOv3's configs use
:class:`~mmext.visualization.UncertaintyDetLocalVisualizer`), so mmdet's own ``DetInferencer``
already draws the uncertainty; only the exported numbers need this class.
"""
import os.path as osp
from typing import Dict

import mmengine
from mmdet.apis import DetInferencer as MMDetInferencer
from mmdet.structures import DetDataSample

# per-instance fields exported besides mmdet's; each (N, 4) or (N, ) tensor -> nested lists
EXTRA_INSTANCE_FIELDS = ('bbox_uncertainty', 'bbox_std')


class DetInferencer(MMDetInferencer):
    """:class:`mmdet.apis.DetInferencer`; predictions also hold ``EXTRA_INSTANCE_FIELDS``."""

    def pred2dict(self, data_sample: DetDataSample, pred_out_dir: str = '') -> Dict:
        if 'img_path' in data_sample and data_sample.img_path is None:
            # an ndarray input: mmdet's pred2dict would take basename(None) when saving;
            # without the key it numbers the file, as it means to
            data_sample = data_sample.clone()
            del data_sample.img_path
        result = super().pred2dict(data_sample, pred_out_dir)
        instances = data_sample.get('pred_instances')
        extra = {} if instances is None else {
            key: instances.get(key).detach().cpu().numpy().tolist()
            for key in EXTRA_INSTANCE_FIELDS if key in instances}
        if extra:
            result.update(extra)
            if pred_out_dir:  # rewrite the file mmdet just saved, with the extra fields
                mmengine.dump(result, self._json_path(data_sample, pred_out_dir))
        return result

    def _json_path(self, data_sample: DetDataSample, pred_out_dir: str) -> str:
        """Where mmdet's pred2dict saved this prediction (it has counted it already)."""
        if 'img_path' in data_sample:
            name = osp.splitext(osp.basename(data_sample.img_path))[0]
        else:
            name = str(self.num_predicted_imgs - 1)
        return osp.join(pred_out_dir, 'preds', name + '.json')
