// Assigning an action slot to a workflow: your own action is changed; a shared one (the owner's
// defaults, seen by another user) is copied into your own action for that slot, which replaces it for you.
import { manage, type Action, type Parameter } from '../../api/manage'

export function ownCopy(action: Action, changes: { workflow_id?: string; parameters?: Parameter[] }) {
  return {
    slot: action.slot,
    label: action.label,
    icon: action.icon,
    position: action.position,
    workflow_id: changes.workflow_id ?? action.workflow_id,
    parameters: changes.parameters ?? action.parameters,
    compute: action.compute,
    needs_image: action.needs_image,
    needs_mask: action.needs_mask,
  }
}

export function saveAction(action: Action, changes: { workflow_id?: string; parameters?: Parameter[] }): Promise<Action> {
  return action.mine ? manage.updateAction(action.slot, changes) : manage.createAction(ownCopy(action, changes))
}

export function assignSlot(action: Action, workflowId: string): Promise<Action> {
  return saveAction(action, { workflow_id: workflowId })
}
