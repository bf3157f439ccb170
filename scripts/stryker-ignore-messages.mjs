// A Stryker ignorer (stryker.config.mjs, `ignorers`): skips what only changes the content of a
// log line or the text of an error message, which the issue lets mutation testing exclude:
//   logger.debug|info|warn|error(<message>, <fields>...)   the whole call: the line's text,
//       its fields (which user, which key id) and whether it is written at all. What the
//       protocol redacts from a line is decided elsewhere (handler.ts) and is still mutated.
//   new <Name>Error(<message>, ...)   the first argument, when it is a string or template
//       literal or a conditional choosing between two; the field named by the second argument
//       is still mutated. A template's ${expressions} are part of its text and skipped with it.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);
const isText = (node) =>
  node.type === 'StringLiteral' ||
  node.type === 'TemplateLiteral' ||
  (node.type === 'ConditionalExpression' && isText(node.consequent) && isText(node.alternate));

function isMessageCall(node) {
  if (node.type === 'CallExpression') {
    const callee = node.callee;
    return (
      callee.type === 'MemberExpression' &&
      callee.property.type === 'Identifier' &&
      LOG_LEVELS.has(callee.property.name) &&
      // logger.info, step.logger.warn, context.logger.error, this.logger.debug
      ((callee.object.type === 'Identifier' && /logger$/i.test(callee.object.name)) ||
        (callee.object.type === 'MemberExpression' &&
          callee.object.property.type === 'Identifier' &&
          /logger$/i.test(callee.object.property.name)))
    );
  }
  if (node.type === 'NewExpression') {
    return node.callee.type === 'Identifier' && /Error$/.test(node.callee.name);
  }
  return false;
}

const ignorer = {
  shouldIgnore(path) {
    // A whole log call: its text, its fields, and whether the line is written at all.
    if (path.node.type === 'CallExpression' && isMessageCall(path.node)) return 'log line';
    if (path.node.type === 'ExpressionStatement' && isMessageCall(path.node.expression)) {
      return 'log line';
    }
    const parent = path.parentPath;
    if (
      parent?.node.type === 'NewExpression' &&
      isMessageCall(parent.node) &&
      parent.node.arguments[0] === path.node &&
      isText(path.node)
    ) {
      return 'error message text';
    }
    return undefined;
  },
};

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-and-message-strings', ignorer),
];
