"""Plot loss/metric curves or compute training time: MMDetection's own ``analyze_logs.py``.

    python tools/analysis_tools/analyze_logs.py plot_curve work_dirs/RUN/*/vis_data/scalars.json \
        --keys loss --out losses.png
    python tools/analysis_tools/analyze_logs.py cal_train_time work_dirs/RUN/*/vis_data/scalars.json

Same arguments and output as ``mmdet/tools/analysis_tools/analyze_logs.py`` (it is that script,
run from mmdet's installed copy); its plotting needs pandas and seaborn, which ``make`` installs.
"""
import os.path as osp
import runpy
import sys

import matplotlib
import mmdet

MMDET_ANALYZE_LOGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
                              'analyze_logs.py')

if __name__ == '__main__':
    if '--out' in sys.argv:
        matplotlib.use('Agg')  # writing a file needs no display
    sys.argv[0] = MMDET_ANALYZE_LOGS
    runpy.run_path(MMDET_ANALYZE_LOGS, run_name='__main__')
