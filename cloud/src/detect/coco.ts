// Which of the detector's COCO classes matter to a camera watching a door, a yard or a drive:
// people first, then vehicles and animals. Everything else the model knows (cups, chairs,
// laptops) is scenery here, kept in the detections but not counted.

import type { Detection } from './object-detector.js';

export const PERSON = 'person';
/** Road vehicles that come to a property; trains, boats and aeroplanes do not. */
export const VEHICLES: ReadonlySet<string> = new Set(['car', 'truck', 'bus', 'motorcycle', 'bicycle']);
/** Every animal class of COCO: pets and wildlife alike trigger motion. */
export const ANIMALS: ReadonlySet<string> = new Set(['bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe']);

/** The 80 COCO class names, as the detector spells them. */
export const COCO_LABELS: readonly string[] = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
  'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
  'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
  'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
];

/** How many of each kind that matters a frame holds. */
export interface Interesting {
  people: number;
  vehicles: number;
  animals: number;
}

/**
 * Counts the people, vehicles and animals among detections (all of them: the detector has
 * already dropped those below its minScore). An empty result means nothing worth a look.
 */
export function interesting(detections: readonly Detection[]): Interesting {
  const n: Interesting = { people: 0, vehicles: 0, animals: 0 };
  for (const d of detections) {
    if (d.label === PERSON) n.people++;
    else if (VEHICLES.has(d.label)) n.vehicles++;
    else if (ANIMALS.has(d.label)) n.animals++;
  }
  return n;
}

/** True when a frame holds a person, a vehicle or an animal. */
export function anyInteresting(n: Interesting): boolean {
  return n.people + n.vehicles + n.animals > 0;
}
